// {{name}}: checks an order, answers a validation verdict for a bad one, and routes a good one to
// `fulfil` or, at or above the job variable `review_threshold` (default 10,000,000), to
// `manual_review`. Built on the vecron SDK (vecron-sdk/vecron.ts), which hides the ABI.
import { Json, run, invalid, info, warn, error, getContext, setContext } from "../vecron-sdk/vecron";
export { alloc } from "../vecron-sdk/vecron";

function nonEmptyString(v: Json): bool {
  return v.isString() && v.asString().length > 0;
}
function positiveWhole(v: Json): bool {
  return v.isInteger() && v.asNumber() > 0;
}
function currencyCode(v: Json): bool {
  if (!v.isString()) return false;
  const s = v.asString();
  if (s.length != 3) return false;
  for (let i = 0; i < 3; i++) {
    const c = s.charCodeAt(i);
    if (c < 65 || c > 90) return false;
  }
  return true;
}

function check(order: Json): string[] {
  if (!order.isObject()) return ["order must be an object"];
  const errors: string[] = [];
  if (!nonEmptyString(order.get("id"))) errors.push("order.id must be a non-empty string");
  if (!positiveWhole(order.get("amount"))) errors.push("order.amount must be a positive whole number");
  if (!currencyCode(order.get("currency"))) errors.push("order.currency must be a 3-letter code");
  const items = order.get("items");
  if (!items.isArray() || items.length == 0) errors.push("order.items must be a non-empty list");
  for (let i = 0; i < items.length; i++) {
    const item = items.at(i);
    if (!nonEmptyString(item.get("sku"))) errors.push("order.items[" + i.toString() + "].sku must be a non-empty string");
    if (!positiveWhole(item.get("qty"))) errors.push("order.items[" + i.toString() + "].qty must be a positive whole number");
  }
  return errors;
}

function handle(input: Json): Json {
  const order = input.get("order");
  const errors = check(order);
  if (errors.length > 0) {
    warn("order rejected: " + errors.length.toString() + " problem(s)");
    return invalid(errors);
  }
  const id = order.get("id").asString();
  const amount = order.get("amount").asNumber();
  const currency = order.get("currency").asString();
  const items = order.get("items");
  let count: i64 = 0;
  for (let i = 0; i < items.length; i++) count += <i64>items.at(i).get("qty").asNumber();
  const t = getContext("review_threshold");
  const threshold = t === null ? 10000000 : t.asNumber(10000000);
  const next = amount >= threshold ? "manual_review" : "fulfil";

  if (setContext("last_order_id", Json.string(id)) != 0) error("set_context failed");
  info("order " + id + ": " + count.toString() + " item(s), " + (<i64>amount).toString() + " " + currency + " -> " + next);
  return Json.object()
    .setBool("valid", true)
    .setString("order_id", id)
    .setNumber("amount", amount)
    .setString("currency", currency)
    .setNumber("item_count", <f64>count)
    .route(next);
}

export function process(ptr: i32, len: i32): i64 {
  return run(ptr, len, handle);
}
