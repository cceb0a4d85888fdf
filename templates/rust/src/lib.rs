//! {{name}}: checks an order, answers a validation verdict for a bad one, and routes a good one to
//! `fulfil` or, at or above the job variable `review_threshold` (default 10,000,000), to
//! `manual_review`. Built on the vecron SDK (vecron-sdk/vecron.rs), which hides the ABI.
#[path = "../vecron-sdk/vecron.rs"]
mod vecron;

use vecron::Json;

fn non_empty_string(v: &Json) -> bool {
    v.as_str().map_or(false, |s| !s.is_empty())
}
fn positive_whole(v: &Json) -> bool {
    v.as_i64().map_or(false, |n| n > 0)
}
fn currency_code(v: &Json) -> bool {
    v.as_str().map_or(false, |s| s.len() == 3 && s.bytes().all(|b| b.is_ascii_uppercase()))
}

fn check(order: &Json) -> Vec<String> {
    let mut errors = Vec::new();
    if order.as_object().is_none() {
        return vec!["order must be an object".to_string()];
    }
    if !non_empty_string(order.get("id")) {
        errors.push("order.id must be a non-empty string".to_string());
    }
    if !positive_whole(order.get("amount")) {
        errors.push("order.amount must be a positive whole number".to_string());
    }
    if !currency_code(order.get("currency")) {
        errors.push("order.currency must be a 3-letter code".to_string());
    }
    let items = order.get("items");
    if items.as_array().map_or(true, |a| a.is_empty()) {
        errors.push("order.items must be a non-empty list".to_string());
    }
    for (i, item) in items.as_array().into_iter().flatten().enumerate() {
        if !non_empty_string(item.get("sku")) {
            errors.push(format!("order.items[{}].sku must be a non-empty string", i));
        }
        if !positive_whole(item.get("qty")) {
            errors.push(format!("order.items[{}].qty must be a positive whole number", i));
        }
    }
    errors
}

fn process(input: &Json) -> Json {
    let order = input.get("order");
    let errors = check(order);
    if !errors.is_empty() {
        vecron::warn(&format!("order rejected: {} problem(s)", errors.len()));
        return vecron::invalid(errors);
    }
    let id = order.get("id").as_str().unwrap_or("");
    let amount = order.get("amount").as_i64().unwrap_or(0);
    let count: i64 = order.get("items").as_array().into_iter().flatten().filter_map(|i| i.get("qty").as_i64()).sum();
    let threshold = vecron::get_context("review_threshold").and_then(|v| v.as_f64()).unwrap_or(10_000_000.0);
    let next = if amount as f64 >= threshold { "manual_review" } else { "fulfil" };
    let currency = order.get("currency").as_str().unwrap_or("");

    if let Err(e) = vecron::set_context("last_order_id", &Json::from(id)) {
        vecron::error(&format!("set_context failed: {:?}", e));
    }
    vecron::info(&format!("order {}: {} item(s), {} {} -> {}", id, count, amount, currency, next));
    Json::object()
        .with("valid", true)
        .with("order_id", id)
        .with("amount", amount)
        .with("currency", currency)
        .with("item_count", count)
        .route(next)
}

vecron::entry!(process, process);
