-- create.lua - wrk script for bench/growth: create many distinct secrets (POST .../secrets, 201).
--
--   wrk -t T -c C -d 86400s -H "Authorization: Bearer ..." -s bench/create.lua URL \
--       -- FIRST COUNT PER_ENV T [PROGRESS_DIR]
--
-- Secret number g (FIRST <= g < FIRST + COUNT) is K%08d in environment number e = g // PER_ENV,
-- which is bench/aaa, bench/app or bench/zzz (e % 3) / env "e%05d". In the key space these lie
-- before bench/app/prod (project aaa, and app's envs e*) and after it (project zzz), so a scan of
-- bench/app/prod has neighbours on both sides. T must be wrk's -t: thread t owns its own
-- contiguous share of the range, so no two connections ever send the same name and every create
-- must answer 201 (a 409 means the range was used before).
--
-- A thread that has handed out its whole share sends GET /healthz on its connections until its
-- last create is answered, then stops. wrk itself runs until its -d is over, so the caller sends
-- it SIGINT once every thread has reported "done" in PROGRESS_DIR/t<thread> (a line
-- "created failed answered [done]", rewritten every 1000 answers). done() prints one line,
-- "create.lua: created N failed M statuses S:n,...", for the caller to check.
--
-- wrk calls request() once before the run to check the request (thread 0 only, in the wrk
-- versions that do this) and never sends that one: thread 0's first request is therefore a
-- /healthz, which costs nothing when it is sent after all.

local threads = {}

function setup(thread)
    thread:set("tid", #threads)
    table.insert(threads, thread)
end

function init(args)
    local first = tonumber(args[1] or "0")
    local count = tonumber(args[2] or "1000")
    per_env = tonumber(args[3] or "1000")
    local nthreads = tonumber(args[4] or "1")
    progress_dir = args[5]
    local share = math.floor(count / nthreads)
    local extra = count % nthreads
    quota = share + ((tid < extra) and 1 or 0)
    base = first + tid * share + math.min(tid, extra)
    projects = { "aaa", "app", "zzz" }
    sent = 0         -- creates handed out
    created = 0      -- 201 answers
    failed = 0       -- other answers to creates
    answered = 0     -- every answer, /healthz included
    statuses = {}
    stopped = false
    first_call = (tid == 0)
    wrk.headers["Content-Type"] = "application/json"
    filler = wrk.format("GET", "/healthz")
end

function request()
    if first_call then
        first_call = false
        return filler
    end
    if sent >= quota then
        return filler
    end
    local g = base + sent
    sent = sent + 1
    local e = math.floor(g / per_env)
    local name = string.format("K%08d", g)
    return wrk.format("POST", string.format("/bench/%s/envs/e%05d/secrets", projects[e % 3 + 1], e), nil,
        string.format('{"kind":"secret","name":"%s"}', name))
end

local function report(final)
    if not progress_dir then
        return
    end
    local f = io.open(progress_dir .. "/t" .. tid, "w")
    if f then
        f:write(string.format("%d %d %d%s\n", created, failed, answered, final and " done" or ""))
        f:close()
    end
end

function response(status, headers, body)
    answered = answered + 1
    if status == 201 then
        created = created + 1
    elseif status ~= 200 then -- 200 is a /healthz; a create never answers 200
        failed = failed + 1
        statuses[status] = (statuses[status] or 0) + 1
    end
    if not stopped and created + failed >= quota then
        stopped = true
        local s = {}
        for k, v in pairs(statuses) do
            table.insert(s, k .. ":" .. v)
        end
        status_list = table.concat(s, ",")
        report(true)
        wrk.thread:stop()
    elseif answered % 1000 == 0 then
        report(false)
    end
end

function done(summary, latency, requests)
    local c, f, st = 0, 0, {}
    for _, t in ipairs(threads) do
        c = c + (t:get("created") or 0)
        f = f + (t:get("failed") or 0)
        for code, n in string.gmatch(t:get("status_list") or "", "(%d+):(%d+)") do
            st[code] = (st[code] or 0) + tonumber(n)
        end
    end
    local s = {}
    for code, n in pairs(st) do
        table.insert(s, code .. ":" .. n)
    end
    table.sort(s)
    io.write(string.format("create.lua: created %d failed %d statuses %s\n", c, f, #s > 0 and table.concat(s, ",") or "-"))
end
