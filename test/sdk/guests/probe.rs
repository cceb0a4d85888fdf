//! The Rust SDK's test module (test/sdk/rust.test.ts): every part of vecron.rs but the host functions
//! (those in `hosts`, built with `--cfg probe_hosts`).
#[path = "../../../sdk/rust/vecron.rs"]
mod vecron;
use vecron::Json;

fn probe(input: &Json) -> Json {
    match input.get("mode").as_str() {
        Some("verdict") => return vecron::invalid(vec![format!("field {} is required", "a"), format!("field {} is required", "b")]),
        Some("route") => return Json::object().route(input.get("to").as_str().unwrap_or("")),
        _ => {}
    }
    vecron::debug("debug line");
    vecron::info(&format!("text has {} bytes", input.get("text").as_str().map_or(0, |s| s.len())));
    vecron::warn("warn line");
    vecron::error("error line");
    vecron::set_context("probe", input.get("n")).unwrap();
    vecron::set_context("greeting", &Json::from("xin chào \"quoted\"\n")).unwrap();
    let bad = match vecron::set_context_raw("broken", "{not json") {
        Ok(()) => 0,
        Err(vecron::SetContextError::Invalid) => 1,
        Err(vecron::SetContextError::TooLarge) => 2,
    };
    Json::object()
        .with("echo", input)
        .with("second_name", input.path("list.1.name"))
        .with("region", vecron::get_context("region"))
        .with("dotted", vecron::get_context("variables.region"))
        .with("missing_is_null", vecron::get_context("no_such_key").is_none())
        .with("set_broken", bad)
        .with("list_len", input.get("list").len())
        .with("n_is_integer", input.get("n").as_i64().is_some())
        .with("numbers", vec![0.1, -2.5e-7, 1e21, 123456789012.0, f64::NAN])
}
vecron::entry!(probe, probe);

#[cfg(probe_hosts)]
fn hosts(input: &Json) -> Json {
    fn code<T>(r: &vecron::HostResult<T>) -> Json {
        match r {
            Ok(_) => Json::from("ok"),
            Err(e) => Json::from(e.code.as_str()),
        }
    }
    Json::object()
        .with("http", code(&vecron::HttpRequest::get(input.get("url").as_str().unwrap_or("")).header("accept", "application/json").send()))
        .with("db", code(&vecron::db_query("main", "SELECT $1::int AS one", vec![Json::from(1)])))
        .with("write", code(&vecron::file_write("out/a.txt", "hello")))
        .with("read", code(&vecron::file_read("out/a.txt")))
        .with("list", code(&vecron::file_list("out/")))
        .with("sha256", code(&vecron::sha256("abc")))
        .with("sha512", code(&vecron::sha512("abc")))
        .with("hmac", code(&vecron::hmac_sha256("SIGNING_KEY", "abc")))
        .with("random", code(&vecron::random_bytes(16)))
        .with("uuid", code(&vecron::uuid()))
        .with("now", code(&vecron::time_now(None)))
}
#[cfg(probe_hosts)]
vecron::entry!(hosts, hosts);
