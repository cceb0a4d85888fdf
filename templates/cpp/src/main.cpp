// {{name}}: checks an order, answers a validation verdict for a bad one, and routes a good one to
// `fulfil` or, at or above the job variable `review_threshold` (default 10,000,000), to
// `manual_review`. Built on vecron.hpp (vecron-sdk/), which hides the ABI.
#include <string>

#include "vecron.hpp"

using vecron::Json;

static bool non_empty_string(Json v) { return v.is_string() && !v.str().empty(); }
static bool positive_whole(Json v) { return v.is_integer() && v.number() > 0; }
static bool currency_code(Json v) {
  auto s = v.str();
  if (!v.is_string() || s.size() != 3) return false;
  for (char c : s)
    if (c < 'A' || c > 'Z') return false;
  return true;
}

static vecron::Errors check(Json order) {
  vecron::Errors errors;
  if (!order.is_object()) {
    errors.add("order must be an object");
    return errors;
  }
  if (!non_empty_string(order["id"])) errors.add("order.id must be a non-empty string");
  if (!positive_whole(order["amount"])) errors.add("order.amount must be a positive whole number");
  if (!currency_code(order["currency"])) errors.add("order.currency must be a 3-letter code");
  Json items = order["items"];
  if (!items.is_array() || items.size() == 0) errors.add("order.items must be a non-empty list");
  size_t i = 0;
  for (Json item : items) {
    std::string at = "order.items[" + std::to_string(i++) + "]";
    if (!non_empty_string(item["sku"])) errors.add(at + ".sku must be a non-empty string");
    if (!positive_whole(item["qty"])) errors.add(at + ".qty must be a positive whole number");
  }
  return errors;
}

static void process(Json input, vecron::Writer &out) {
  Json order = input["order"];
  vecron::Errors errors = check(order);
  if (!errors.empty()) {
    vecron::warn("order rejected: " + std::to_string(errors.size()) + " problem(s)");
    errors.write(out);
    return;
  }
  long long count = 0;
  for (Json item : order["items"]) count += *item["qty"].integer();
  long long amount = *order["amount"].integer();
  auto t = vecron::get_context("review_threshold");
  double threshold = t ? t->number(10000000) : 10000000;
  std::string next = amount >= threshold ? "manual_review" : "fulfil";
  std::string id(order["id"].str());
  std::string currency(order["currency"].str());

  if (vecron::set_context_string("last_order_id", id) != 0) vecron::error("set_context failed");
  vecron::info("order " + id + ": " + std::to_string(count) + " item(s), " + std::to_string(amount) + " " + currency + " -> " + next);
  out.object()
      .kv("valid", true)
      .kv("order_id", id)
      .kv("amount", amount)
      .kv("currency", currency)
      .kv("item_count", count)
      .route(next)
      .end_object();
}

VECRON_CPP_ENTRY(process, process)
