"""Wasmtime (PyPI `wasmtime`) side of bench/wasm.ts. Timed inside Python with time.perf_counter_ns.

Reads one JSON object on stdin:
  {"echo": path, "kernel": path, "input": str, "iterations": n, "warmup": n, "fuel": n,
   "kernels": [{"name": str, "fn": str, "args": [...], "rounds": n, "checksumBytes": n?}]}
Prints one JSON object on stdout:
  {"version": str, "echo": {"fresh": [us...], "reused": [us...], "nofuel_fresh": [us...]},
   "kernels": {name: {"fuel": [ms...], "nofuel": [ms...], "fuelConsumed": n}}}

Echo, one run = what a host does for one step: json.dumps the input value, encode it, alloc(len)
in the guest, write the bytes, call echo(ptr, len) -> i64, read (ptr, len) of the output, decode
and json.loads it; with fuel on (consume_fuel=True, store.set_fuel before the call).
  - fresh:  a new Store + Instance per run (the isolation the runtime gives: no state shared);
  - reused: one Store + Instance for all runs, the fuel set again before each run.
The module is compiled once (wasmtime.Module) for all variants.
"""
import json
import sys
import time
import importlib.metadata

import wasmtime


def engine(fuel: bool) -> wasmtime.Engine:
    cfg = wasmtime.Config()
    cfg.consume_fuel = fuel
    return wasmtime.Engine(cfg)


def main() -> None:
    req = json.load(sys.stdin)
    iters = int(req.get("iterations", 2000))
    warmup = int(req.get("warmup", 200))
    fuel = int(req.get("fuel", 10_000_000))
    value = json.loads(req["input"])
    out = {"version": importlib.metadata.version("wasmtime"), "echo": {}, "kernels": {}}

    with open(req["echo"], "rb") as f:
        echo_bytes = f.read()
    eng_fuel = engine(True)
    eng_plain = engine(False)
    mod_fuel = wasmtime.Module(eng_fuel, echo_bytes)
    mod_plain = wasmtime.Module(eng_plain, echo_bytes)
    expected = value

    def one_fresh(eng, mod, with_fuel):
        store = wasmtime.Store(eng)
        if with_fuel:
            store.set_fuel(fuel)
        inst = wasmtime.Instance(store, mod, [])
        ex = inst.exports(store)
        mem = ex["memory"]
        data = json.dumps(value, separators=(",", ":")).encode()
        ptr = ex["alloc"](store, len(data))
        mem.write(store, data, ptr)
        r = ex["echo"](store, ptr, len(data)) & 0xFFFFFFFFFFFFFFFF
        optr, olen = r >> 32, r & 0xFFFFFFFF
        return json.loads(mem.read(store, optr, optr + olen).decode())

    def timed(fn, n):
        samples = []
        for _ in range(n):
            t0 = time.perf_counter_ns()
            fn()
            samples.append((time.perf_counter_ns() - t0) / 1000.0)
        return samples

    assert one_fresh(eng_fuel, mod_fuel, True) == expected
    timed(lambda: one_fresh(eng_fuel, mod_fuel, True), warmup)
    out["echo"]["fresh"] = timed(lambda: one_fresh(eng_fuel, mod_fuel, True), iters)
    timed(lambda: one_fresh(eng_plain, mod_plain, False), warmup)
    out["echo"]["nofuel_fresh"] = timed(lambda: one_fresh(eng_plain, mod_plain, False), iters)

    # reused instance, fuel set per call
    store = wasmtime.Store(eng_fuel)
    store.set_fuel(fuel)
    inst = wasmtime.Instance(store, mod_fuel, [])
    ex = inst.exports(store)
    mem, alloc, echo = ex["memory"], ex["alloc"], ex["echo"]

    def one_reused():
        store.set_fuel(fuel)
        data = json.dumps(value, separators=(",", ":")).encode()
        ptr = alloc(store, len(data))
        mem.write(store, data, ptr)
        r = echo(store, ptr, len(data)) & 0xFFFFFFFFFFFFFFFF
        optr, olen = r >> 32, r & 0xFFFFFFFF
        return json.loads(mem.read(store, optr, optr + olen).decode())

    assert one_reused() == expected
    timed(one_reused, warmup)
    out["echo"]["reused"] = timed(one_reused, iters)

    # compute kernels: fuel on vs off, interleaved rounds, one instance per engine
    kernels = req.get("kernels") or []
    if kernels and req.get("kernel"):
        with open(req["kernel"], "rb") as f:
            kbytes = f.read()
        insts = {}
        for name, eng in (("fuel", eng_fuel), ("nofuel", eng_plain)):
            st = wasmtime.Store(eng)
            if name == "fuel":
                st.set_fuel(10**18)
            ins = wasmtime.Instance(st, wasmtime.Module(eng, kbytes), [])
            insts[name] = (st, ins.exports(st))
        for k in kernels:
            res = {"fuel": [], "nofuel": [], "fuelConsumed": None}
            prepared = {}
            for name, (st, ex) in insts.items():
                args = list(k["args"])
                if k.get("checksumBytes"):
                    n = int(k["checksumBytes"])
                    p = ex["alloc"](st, n)
                    ex["memory"].write(st, bytes((i * 31 + 7) & 0xFF for i in range(n)), p)
                    args = [p, n]
                prepared[name] = args
            rounds = int(k.get("rounds", 5))
            for r in range(rounds + 1):  # round 0 is warm-up
                order = ("fuel", "nofuel") if r % 2 == 0 else ("nofuel", "fuel")
                for name in order:
                    st, ex = insts[name]
                    fn = ex[k["fn"]]
                    if name == "fuel":
                        st.set_fuel(10**18)
                    t0 = time.perf_counter_ns()
                    fn(st, *prepared[name])
                    dt = (time.perf_counter_ns() - t0) / 1e6
                    if name == "fuel" and res["fuelConsumed"] is None:
                        res["fuelConsumed"] = 10**18 - st.get_fuel()
                    if r > 0:
                        res[name].append(dt)
            out["kernels"][k["name"]] = res
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
