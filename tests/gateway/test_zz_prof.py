import time, uuid, statistics
import trio
from tasker_gateway.usecases import create as cr
from tests.gateway.conftest import running_gateway

async def test_prof(db_url, monkeypatch):
    marks = {"send": [], "wait": [], "view": [], "total": [], "live": []}
    orig_await = cr._await_outcome
    orig_resolve = cr._resolve
    async def await_outcome(*a, **k):
        t = time.perf_counter(); r = await orig_await(*a, **k); marks["wait"].append(time.perf_counter() - t); return r
    async def resolve(*a, **k):
        t = time.perf_counter(); r = await orig_resolve(*a, **k); marks["view"].append(time.perf_counter() - t); return r
    monkeypatch.setattr(cr, "_await_outcome", await_outcome)
    monkeypatch.setattr(cr, "_resolve", resolve)
    async with running_gateway(db_url) as gw, gw.http() as http:
        for i in range(80):
            t = time.perf_counter()
            r = await http.get("/health/live")
            marks["live"].append(time.perf_counter() - t)
        for i in range(80):
            t = time.perf_counter()
            await gw.ctx.db.run(cr._send, {"request_id": "x", "task_request": {"name": "nope"}})
            marks["send"].append(time.perf_counter() - t)
        for i in range(80):
            t = time.perf_counter()
            r = await http.post("/v1/tasks", json={"name": "linear_workflow", "namespace": "examples", "version": "1.0.0", "context": {"even_number": 2, "r": uuid.uuid4().hex}})
            assert r.status_code == 201
            marks["total"].append(time.perf_counter() - t)
    for k, v in marks.items():
        if v: print(k, round(statistics.median(v[10:]) * 1000, 2))
