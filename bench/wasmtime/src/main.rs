//! The native Wasmtime reference of bench/wasm.ts (issue 19): what a Rust host does for one run
//! of a guest, timed inside Rust with `Instant`, so no binding's overhead is in the figures.
//!
//! Reads one JSON object on stdin:
//!   {"echo": path, "kernel": path | null, "input": str, "iterations": n, "warmup": n,
//!    "fuel": n, "memoryMaxBytes": n, "rounds": n,
//!    "kernels": [{"name": str, "fn": str, "args": [i32...], "checksumBytes": n?}]}
//! Prints one JSON object on stdout:
//!   {"version": str, "config": {...},
//!    "echo": {"fresh" | "reused" | "fresh_nofuel": {"p50", "p99", "min", "max", "mean", "n", "samples": [us...]}},
//!    "kernels": {name: {"plain" | "epoch" | "fuel": [ms...], "fuelConsumed": n, "result": str}}}
//! Errors: a line on stderr and exit code 1.
//!
//! Echo, one run = the host side of one step, as rows (a)-(d) of bench/wasm.ts do it: serialize
//! the input value (serde_json, the counterpart of JSON.stringify + encode), `alloc(len)` in the
//! guest, copy the bytes in, call `echo(ptr, len) -> i64`, read `(ptr << 32) | len`, parse the
//! output (serde_json, straight from guest memory). The engine is what a Rust host would run:
//! the pooling allocator (64 KiB of each slot kept resident), fuel (`consume_fuel`) and epoch
//! interruption (a ticker thread increments the epoch every millisecond; each run gets a
//! deadline), a `StoreLimits` memory limit, and a
//! fresh `Store` + `Instance` per run from an `InstancePre` made once; exports are looked up by
//! their pre-resolved `ModuleExport` index. The store is dropped inside the timed region: giving
//! the slot back to the pool is part of a run's cost. The three echo rows (fresh, reused, fresh
//! without metering) run interleaved, so that on a busy machine they see the same load.

use std::io::Read;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};
use wasmtime::{
    Config, Engine, Instance, InstanceAllocationStrategy, InstancePre, Linker, Memory, Module,
    ModuleExport, PoolingAllocationConfig, Store, StoreLimits, StoreLimitsBuilder, Val,
};

/// The wasmtime crate this harness is built against (Cargo.toml pins it exactly).
const WASMTIME_VERSION: &str = "48.0.8";
/// How often the ticker thread increments the epoch.
const EPOCH_TICK: Duration = Duration::from_millis(1);
/// A run's deadline in epoch ticks (10 s): never reached, but checked by the guest's code.
const DEADLINE_TICKS: u64 = 10_000;
/// Bytes of each pooled memory and table kept resident between instances: one wasm page.
const KEEP_RESIDENT: usize = 64 << 10;
/// Fuel for the kernels: enough for any of them.
const KERNEL_FUEL: u64 = 1_000_000_000_000_000_000;

type R<T> = Result<T, String>;

fn err<E: std::fmt::Display>(what: &str) -> impl FnOnce(E) -> String + '_ {
    move |e| format!("{what}: {e}")
}

struct Req {
    echo: String,
    kernel: Option<String>,
    input: String,
    iterations: usize,
    warmup: usize,
    fuel: u64,
    memory_max_bytes: usize,
    rounds: usize,
    kernels: Vec<KernelReq>,
}

struct KernelReq {
    name: String,
    func: String,
    args: Vec<i32>,
    checksum_bytes: Option<usize>,
}

fn parse_req(text: &str) -> R<Req> {
    let v: Value = serde_json::from_str(text).map_err(err("request on stdin"))?;
    let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    let n = |k: &str, d: u64| v.get(k).and_then(Value::as_u64).unwrap_or(d);
    let mut kernels = Vec::new();
    for k in v.get("kernels").and_then(Value::as_array).into_iter().flatten() {
        let name = k.get("name").and_then(Value::as_str).ok_or("kernel without a name")?;
        kernels.push(KernelReq {
            name: name.to_owned(),
            func: k.get("fn").and_then(Value::as_str).unwrap_or(name).to_owned(),
            args: k
                .get("args")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_i64).map(|x| x as i32).collect())
                .unwrap_or_default(),
            checksum_bytes: k.get("checksumBytes").and_then(Value::as_u64).map(|x| x as usize),
        });
    }
    Ok(Req {
        echo: s("echo").ok_or("request without `echo`")?,
        kernel: s("kernel"),
        input: s("input").ok_or("request without `input`")?,
        iterations: n("iterations", 2000) as usize,
        warmup: n("warmup", 200) as usize,
        fuel: n("fuel", 10_000_000),
        memory_max_bytes: n("memoryMaxBytes", 64 << 20) as usize,
        rounds: n("rounds", 10) as usize,
        kernels,
    })
}

/// An engine with the pooling allocator; fuel and epoch interruption as asked.
fn engine(fuel: bool, epoch: bool, memory_max_bytes: usize) -> R<Engine> {
    let mut pool = PoolingAllocationConfig::new();
    // A handful of slots: the runs are one at a time. Slot sizes bounded by the memory limit.
    // Keeping the first KEEP_RESIDENT bytes of a slot resident (zeroed with memset rather than
    // madvise'd away when the instance goes) is the pooling allocator's knob for many short runs;
    // it took ~2.7 us off a fresh-instance run here (12.7 -> 10.0 us p50), so the reference uses it.
    pool.total_core_instances(8)
        .total_memories(8)
        .total_tables(8)
        .max_memory_size(memory_max_bytes)
        .linear_memory_keep_resident(KEEP_RESIDENT)
        .table_keep_resident(KEEP_RESIDENT);
    let mut cfg = Config::new();
    cfg.allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
        .consume_fuel(fuel)
        .epoch_interruption(epoch);
    Engine::new(&cfg).map_err(err("Engine::new"))
}

/// Increments the engine's epoch every EPOCH_TICK until `stop` is set: the interrupt a Rust
/// host arms against runaway guests.
fn epoch_ticker(engine: Engine, stop: Arc<AtomicBool>) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            thread::sleep(EPOCH_TICK);
            engine.increment_epoch();
        }
    })
}

struct Metering {
    fuel: Option<u64>,
    epoch: bool,
    memory_max_bytes: usize,
}

fn new_store(engine: &Engine, m: &Metering) -> R<Store<StoreLimits>> {
    let limits = StoreLimitsBuilder::new().memory_size(m.memory_max_bytes).build();
    let mut store = Store::new(engine, limits);
    store.limiter(|l| l);
    if let Some(f) = m.fuel {
        store.set_fuel(f).map_err(err("set_fuel"))?;
    }
    if m.epoch {
        store.set_epoch_deadline(DEADLINE_TICKS);
        store.epoch_deadline_trap();
    }
    Ok(store)
}

/// The echo module's exports, resolved once per module.
struct EchoExports {
    memory: ModuleExport,
    alloc: ModuleExport,
    echo: ModuleExport,
}

impl EchoExports {
    fn of(module: &Module) -> R<Self> {
        let get = |n: &str| module.get_export_index(n).ok_or(format!("echo.wasm has no export `{n}`"));
        Ok(EchoExports { memory: get("memory")?, alloc: get("alloc")?, echo: get("echo")? })
    }
}

/// The host side of one run on `instance`: serialize, alloc, copy in, call, read out, parse.
fn call_echo(store: &mut Store<StoreLimits>, instance: &Instance, ex: &EchoExports, value: &Value) -> R<Value> {
    let data = serde_json::to_vec(value).map_err(err("serialize"))?;
    let memory: Memory = instance
        .get_module_export(&mut *store, &ex.memory)
        .and_then(|e| e.into_memory())
        .ok_or("no memory")?;
    let alloc = instance
        .get_module_export(&mut *store, &ex.alloc)
        .and_then(|e| e.into_func())
        .ok_or("no alloc")?
        .typed::<i32, i32>(&*store)
        .map_err(err("alloc's type"))?;
    let echo = instance
        .get_module_export(&mut *store, &ex.echo)
        .and_then(|e| e.into_func())
        .ok_or("no echo")?
        .typed::<(i32, i32), i64>(&*store)
        .map_err(err("echo's type"))?;
    let len = data.len() as i32;
    let ptr = alloc.call(&mut *store, len).map_err(err("alloc"))?;
    memory.write(&mut *store, ptr as u32 as usize, &data).map_err(err("write input"))?;
    let r = echo.call(&mut *store, (ptr, len)).map_err(err("echo"))? as u64;
    let (optr, olen) = ((r >> 32) as usize, (r & 0xffff_ffff) as usize);
    let bytes = memory.data(&*store).get(optr..optr + olen).ok_or("output out of bounds")?;
    serde_json::from_slice(bytes).map_err(err("parse output"))
}

/// A fresh Store + Instance from `pre`, one echo run, the store dropped at the end; the output
/// and the fuel the run consumed (None without fuel).
fn run_fresh(engine: &Engine, pre: &InstancePre<StoreLimits>, ex: &EchoExports, m: &Metering, value: &Value) -> R<(Value, Option<u64>)> {
    let mut store = new_store(engine, m)?;
    let instance = pre.instantiate(&mut store).map_err(err("instantiate"))?;
    let out = call_echo(&mut store, &instance, ex, value)?;
    let used = match m.fuel {
        Some(f) => Some(f - store.get_fuel().map_err(err("get_fuel"))?),
        None => None,
    };
    Ok((out, used))
}

/// The p-th percentile with linear interpolation between the nearest ranks (as bench/stats.ts).
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = p / 100.0 * (sorted.len() - 1) as f64;
    let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo as f64)
}

fn summary(samples: Vec<f64>) -> Value {
    let mut sorted = samples.clone();
    sorted.sort_by(|a, b| a.total_cmp(b));
    let n = sorted.len();
    json!({
        "n": n,
        "p50": percentile(&sorted, 50.0),
        "p99": percentile(&sorted, 99.0),
        "min": sorted.first().copied().unwrap_or(f64::NAN),
        "max": sorted.last().copied().unwrap_or(f64::NAN),
        "mean": if n == 0 { f64::NAN } else { sorted.iter().sum::<f64>() / n as f64 },
        "samples": samples,
    })
}

/// One echo row: how each run gets its instance.
enum EchoCase {
    /// A fresh Store + Instance from the InstancePre per run.
    Fresh { engine: Engine, pre: InstancePre<StoreLimits>, ex: EchoExports, m: Metering },
    /// One Store + Instance for every run; the fuel and the deadline set again before each.
    Reused { store: Store<StoreLimits>, instance: Instance, ex: EchoExports, fuel: u64 },
}

impl EchoCase {
    fn run(&mut self, value: &Value) -> R<Value> {
        match self {
            EchoCase::Fresh { engine, pre, ex, m } => run_fresh(engine, pre, ex, m, value).map(|(v, _)| v),
            EchoCase::Reused { store, instance, ex, fuel } => {
                store.set_fuel(*fuel).map_err(err("set_fuel"))?;
                store.set_epoch_deadline(DEADLINE_TICKS);
                call_echo(store, instance, ex, value)
            }
        }
    }
}

/// The three echo rows, their runs interleaved (the order rotating) so that all three see the
/// same machine: on a loaded one, rows measured one after the other are not comparable.
fn echo_rows(req: &Req, value: &Value) -> R<Value> {
    let bytes = std::fs::read(&req.echo).map_err(err("read echo.wasm"))?;
    let metered = || Metering { fuel: Some(req.fuel), epoch: true, memory_max_bytes: req.memory_max_bytes };
    let bare = Metering { fuel: None, epoch: false, memory_max_bytes: req.memory_max_bytes };
    // One engine for the metered rows, as a host has; the bare one has no ticker to drive.
    let metered_engine = engine(true, true, req.memory_max_bytes)?;
    let bare_engine = engine(false, false, req.memory_max_bytes)?;
    let prepare = |engine: &Engine| -> R<(InstancePre<StoreLimits>, EchoExports)> {
        let module = Module::new(engine, &bytes).map_err(err("compile echo.wasm"))?;
        let ex = EchoExports::of(&module)?;
        let pre = Linker::new(engine).instantiate_pre(&module).map_err(err("instantiate_pre"))?;
        Ok((pre, ex))
    };
    let stop = Arc::new(AtomicBool::new(false));
    let ticker = epoch_ticker(metered_engine.clone(), stop.clone());

    let (pre, ex) = prepare(&metered_engine)?;
    let (first, fuel_used) = run_fresh(&metered_engine, &pre, &ex, &metered(), value)?;
    if &first != value {
        return Err("fresh echo returned something else".into());
    }
    let fresh = EchoCase::Fresh { engine: metered_engine.clone(), pre, ex, m: metered() };
    let (pre, ex) = prepare(&metered_engine)?;
    let mut store = new_store(&metered_engine, &metered())?;
    let instance = pre.instantiate(&mut store).map_err(err("instantiate"))?;
    let reused = EchoCase::Reused { store, instance, ex, fuel: req.fuel };
    let (pre, ex) = prepare(&bare_engine)?;
    let fresh_nofuel = EchoCase::Fresh { engine: bare_engine, pre, ex, m: bare };

    let keys = ["fresh", "reused", "fresh_nofuel"];
    let mut cases = [fresh, reused, fresh_nofuel];
    for (i, c) in cases.iter_mut().enumerate() {
        if &c.run(value)? != value {
            return Err(format!("{} echo returned something else", keys[i]));
        }
    }
    let mut samples: Vec<Vec<f64>> = vec![Vec::with_capacity(req.iterations); cases.len()];
    for it in 0..req.warmup + req.iterations {
        for j in 0..cases.len() {
            let i = (j + it) % cases.len();
            let t = Instant::now();
            cases[i].run(value)?;
            let us = t.elapsed().as_nanos() as f64 / 1000.0;
            if it >= req.warmup {
                samples[i].push(us);
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    ticker.join().map_err(|_| "epoch ticker panicked")?;
    let mut out = Map::new();
    for (key, s) in keys.iter().zip(samples) {
        out.insert((*key).to_owned(), summary(s));
    }
    out.insert("fuelConsumed".into(), json!(fuel_used));
    Ok(Value::Object(out))
}

fn val_text(v: &Val) -> String {
    match v {
        Val::I32(x) => x.to_string(),
        Val::I64(x) => x.to_string(),
        Val::F32(x) => f32::from_bits(*x).to_string(),
        Val::F64(x) => f64::from_bits(*x).to_string(),
        other => format!("{other:?}"),
    }
}

/// Compute kernels on one reused instance per engine (as the V8 rows): no metering, epoch
/// interruption only, and fuel + epoch interruption; interleaved rounds, 2 of warm-up.
fn kernel_rows(req: &Req, path: &str) -> R<Value> {
    let bytes = std::fs::read(path).map_err(err("read compute-kernel.wasm"))?;
    let variants = [("plain", false, false), ("epoch", false, true), ("fuel", true, true)];
    let stop = Arc::new(AtomicBool::new(false));
    let mut tickers = Vec::new();
    let mut setups = Vec::new();
    for (name, fuel, epoch) in variants {
        let engine = engine(fuel, epoch, req.memory_max_bytes)?;
        if epoch {
            tickers.push(epoch_ticker(engine.clone(), stop.clone()));
        }
        let m = Metering { fuel: fuel.then_some(KERNEL_FUEL), epoch, memory_max_bytes: req.memory_max_bytes };
        let module = Module::new(&engine, &bytes).map_err(err("compile compute-kernel.wasm"))?;
        let mut store = new_store(&engine, &m)?;
        let instance = Linker::new(&engine).instantiate(&mut store, &module).map_err(err("instantiate kernel"))?;
        setups.push((name, m, store, instance));
    }
    let mut out = Map::new();
    for k in &req.kernels {
        let mut calls = Vec::new();
        for (_, _, store, instance) in setups.iter_mut() {
            let func = instance.get_func(&mut *store, &k.func).ok_or(format!("kernel has no export `{}`", k.func))?;
            let args: Vec<Val> = match k.checksum_bytes {
                Some(n) => {
                    let alloc = instance
                        .get_typed_func::<i32, i32>(&mut *store, "alloc")
                        .map_err(err("kernel alloc"))?;
                    let p = alloc.call(&mut *store, n as i32).map_err(err("kernel alloc"))?;
                    let data: Vec<u8> = (0..n).map(|i| ((i * 31 + 7) & 0xff) as u8).collect();
                    let memory = instance.get_memory(&mut *store, "memory").ok_or("kernel has no memory")?;
                    memory.write(&mut *store, p as u32 as usize, &data).map_err(err("kernel write"))?;
                    vec![Val::I32(p), Val::I32(n as i32)]
                }
                None => k.args.iter().map(|&a| Val::I32(a)).collect(),
            };
            let results = vec![Val::I32(0); func.ty(&*store).results().len()];
            calls.push((func, args, results));
        }
        let mut times: Vec<Vec<f64>> = vec![Vec::new(); setups.len()];
        let mut fuel_consumed = None;
        let mut result = String::new();
        for round in -2..req.rounds as i64 {
            // rotate the order so that no variant always runs first
            for j in 0..setups.len() {
                let i = (j + round.rem_euclid(setups.len() as i64) as usize) % setups.len();
                let (_, m, store, _) = &mut setups[i];
                let (func, args, results) = &mut calls[i];
                if let Some(f) = m.fuel {
                    store.set_fuel(f).map_err(err("set_fuel"))?;
                }
                if m.epoch {
                    store.set_epoch_deadline(DEADLINE_TICKS);
                }
                let t = Instant::now();
                func.call(&mut *store, args, results).map_err(err(&k.name))?;
                let ms = t.elapsed().as_nanos() as f64 / 1e6;
                let text = results.first().map(val_text).unwrap_or_default();
                if result.is_empty() {
                    result = text;
                } else if text != result {
                    return Err(format!("{}: results differ between engines ({text} vs {result})", k.name));
                }
                if let Some(f) = m.fuel {
                    fuel_consumed.get_or_insert(f - store.get_fuel().map_err(err("get_fuel"))?);
                }
                if round >= 0 {
                    times[i].push(ms);
                }
            }
        }
        let mut row = Map::new();
        for (i, (name, ..)) in setups.iter().enumerate() {
            row.insert((*name).to_owned(), json!(times[i]));
        }
        row.insert("fuelConsumed".into(), json!(fuel_consumed));
        row.insert("result".into(), json!(result));
        out.insert(k.name.clone(), Value::Object(row));
    }
    stop.store(true, Ordering::Relaxed);
    for t in tickers {
        t.join().map_err(|_| "epoch ticker panicked")?;
    }
    Ok(Value::Object(out))
}

fn run() -> R<Value> {
    let mut text = String::new();
    std::io::stdin().read_to_string(&mut text).map_err(err("read stdin"))?;
    let req = parse_req(&text)?;
    let value: Value = serde_json::from_str(&req.input).map_err(err("input is not JSON"))?;
    // preserve_order: the bytes each run serializes are exactly the other rows' JSON.stringify.
    if serde_json::to_string(&value).map_err(err("serialize"))? != req.input {
        return Err("serde_json does not reproduce the input text byte for byte".into());
    }
    let echo = echo_rows(&req, &value)?;
    let kernels = match &req.kernel {
        Some(path) if !req.kernels.is_empty() => kernel_rows(&req, path)?,
        _ => json!({}),
    };
    Ok(json!({
        "version": WASMTIME_VERSION,
        "config": {
            "allocator": "pooling",
            "keepResidentBytes": KEEP_RESIDENT,
            "epochTickMs": EPOCH_TICK.as_secs_f64() * 1000.0,
            "deadlineTicks": DEADLINE_TICKS,
            "fuel": req.fuel,
            "memoryMaxBytes": req.memory_max_bytes,
            "iterations": req.iterations,
            "warmup": req.warmup,
            "rounds": req.rounds,
        },
        "echo": echo,
        "kernels": kernels,
    }))
}

fn main() -> ExitCode {
    match run() {
        Ok(v) => {
            println!("{v}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("vecron-wasmtime-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
