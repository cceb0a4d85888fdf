/*
 * {{name}}: checks an order, answers a validation verdict for a bad one, and routes a good one
 * to `fulfil` or, at or above the job variable `review_threshold` (default 10,000,000), to
 * `manual_review`. Built on vecron.h (vecron-sdk/), which hides the ABI.
 */
#include <ctype.h>
#include "vecron.h"

static int non_empty_string(const vecron_json *v) { return vecron_string(v) && v->string_len > 0; }
static int positive_whole(const vecron_json *v) { return vecron_is_integer(v) && v->number > 0; }
static int currency_code(const vecron_json *v) {
  const char *s = vecron_string(v);
  return s && v->string_len == 3 && isupper((unsigned char)s[0]) && isupper((unsigned char)s[1]) && isupper((unsigned char)s[2]);
}

static void process(const vecron_json *input, vecron_writer *out) {
  vecron_errors errors = {0};
  const vecron_json *order = vecron_get(input, "order");
  if (!vecron_is(order, VECRON_OBJECT)) {
    vecron_errors_add(&errors, "order must be an object");
  } else {
    if (!non_empty_string(vecron_get(order, "id"))) vecron_errors_add(&errors, "order.id must be a non-empty string");
    if (!positive_whole(vecron_get(order, "amount"))) vecron_errors_add(&errors, "order.amount must be a positive whole number");
    if (!currency_code(vecron_get(order, "currency"))) vecron_errors_add(&errors, "order.currency must be a 3-letter code");
    const vecron_json *items = vecron_get(order, "items");
    if (!vecron_is(items, VECRON_ARRAY) || vecron_len(items) == 0) vecron_errors_add(&errors, "order.items must be a non-empty list");
    for (size_t i = 0; i < vecron_len(items); i++) {
      const vecron_json *item = vecron_at(items, i);
      if (!non_empty_string(vecron_get(item, "sku"))) vecron_errors_add(&errors, "order.items[%zu].sku must be a non-empty string", i);
      if (!positive_whole(vecron_get(item, "qty"))) vecron_errors_add(&errors, "order.items[%zu].qty must be a positive whole number", i);
    }
  }
  if (errors.count > 0) {
    vecron_warn("order rejected: %zu problem(s)", errors.count);
    vecron_w_invalid(out, &errors);
    return;
  }

  const vecron_json *items = vecron_get(order, "items");
  long long count = 0;
  for (size_t i = 0; i < vecron_len(items); i++) count += (long long)vecron_number(vecron_get(vecron_at(items, i), "qty"), 0);
  double amount = vecron_number(vecron_get(order, "amount"), 0);
  double threshold = vecron_number(vecron_get_context("review_threshold"), 10000000);
  const char *next = amount >= threshold ? "manual_review" : "fulfil";
  const char *id = vecron_string(vecron_get(order, "id"));

  vecron_set_context_string("last_order_id", id);
  vecron_info("order %s: %lld item(s), %.0f %s -> %s", id, count, amount, vecron_string(vecron_get(order, "currency")), next);

  vecron_w_object(out);
  vecron_w_kv_bool(out, "valid", 1);
  vecron_w_kv_string(out, "order_id", id);
  vecron_w_kv_number(out, "amount", amount);
  vecron_w_kv_json(out, "currency", vecron_get(order, "currency"));
  vecron_w_kv_int(out, "item_count", count);
  vecron_route(out, next);
  vecron_w_end_object(out);
}

VECRON_ENTRY(process, process)
