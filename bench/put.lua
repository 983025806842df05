-- put.lua - wrk script for bench/run: PUT a secret's value (set-value).
--
--   wrk ... URL -- PREFIX PER_THREAD BODY
--
-- Each wrk thread writes its own PER_THREAD secrets PREFIX.."W_NNN/value" in turn (thread t owns
-- W_{t*PER_THREAD} .. W_{t*PER_THREAD+PER_THREAD-1}), so requests in flight at the same time hit
-- different secrets: the benchmark measures group commit of independent writes, not retries on
-- one contended record. The Authorization header comes from wrk's -H.

local nthreads = 0

function setup(thread)
    thread:set("tid", nthreads)
    nthreads = nthreads + 1
end

function init(args)
    prefix = args[1] or "/bench/app/envs/write/secrets/"
    per_thread = tonumber(args[2] or "64")
    body = args[3] or '{"value":"bench-value"}'
    n = 0
    wrk.headers["Content-Type"] = "application/json"
end

function request()
    local i = tid * per_thread + n % per_thread
    n = n + 1
    return wrk.format("PUT", string.format("%sW_%03d/value", prefix, i), nil, body)
end
