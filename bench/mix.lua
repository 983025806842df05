-- mix.lua - wrk script for bench/run: 90 % reads, 10 % writes.
--
--   wrk ... URL -- READ_PREFIX NREAD WRITE_PREFIX PER_THREAD BODY
--
-- Nine requests in ten GET one secret's metadata, READ_PREFIX.."SECRET_NNN" for NNN cycling over
-- 0 .. NREAD-1; the tenth PUTs a value, WRITE_PREFIX.."W_NNN/value" cycling over this wrk
-- thread's own PER_THREAD secrets (as in put.lua). The Authorization header comes from wrk's -H.

local nthreads = 0

function setup(thread)
    thread:set("tid", nthreads)
    nthreads = nthreads + 1
end

function init(args)
    read_prefix = args[1] or "/bench/app/envs/prod/secrets/"
    nread = tonumber(args[2] or "100")
    write_prefix = args[3] or "/bench/app/envs/write/secrets/"
    per_thread = tonumber(args[4] or "64")
    body = args[5] or '{"value":"bench-value"}'
    n = 0
    w = 0
    -- wrk.format() uses the headers it is given instead of wrk.headers, so the PUT's table is a copy
    -- of wrk.headers (Host, -H Authorization) plus the content type.
    put_headers = {}
    for k, v in pairs(wrk.headers) do
        put_headers[k] = v
    end
    put_headers["Content-Type"] = "application/json"
end

function request()
    n = n + 1
    if n % 10 == 0 then
        local i = tid * per_thread + w % per_thread
        w = w + 1
        return wrk.format("PUT", string.format("%sW_%03d/value", write_prefix, i), put_headers, body)
    end
    return wrk.format("GET", string.format("%sSECRET_%03d", read_prefix, n % nread))
end
