// {{name}}: checks an order, answers a validation verdict for a bad one, and routes a good one to
// `fulfil` or, at or above the job variable `review_threshold` (default 10,000,000), to
// `manual_review`. Built on the vecron SDK (vecron-sdk/), which hides the ABI.
package main

import (
	"fmt"

	"vecron.local/sdk"
)

//go:wasmexport process
func process(ptr, length int32) int64 { return vecron.Run(ptr, length, handle) }

func nonEmptyString(v vecron.Value) bool { s, ok := v.String(); return ok && s != "" }
func positiveWhole(v vecron.Value) bool  { n, ok := v.Int(); return ok && n > 0 }
func currencyCode(v vecron.Value) bool {
	s, ok := v.String()
	if !ok || len(s) != 3 {
		return false
	}
	for _, c := range s {
		if c < 'A' || c > 'Z' {
			return false
		}
	}
	return true
}

func check(order vecron.Value) []string {
	if !order.IsObject() {
		return []string{"order must be an object"}
	}
	var errs []string
	if !nonEmptyString(order.Get("id")) {
		errs = append(errs, "order.id must be a non-empty string")
	}
	if !positiveWhole(order.Get("amount")) {
		errs = append(errs, "order.amount must be a positive whole number")
	}
	if !currencyCode(order.Get("currency")) {
		errs = append(errs, "order.currency must be a 3-letter code")
	}
	items := order.Get("items")
	if !items.IsArray() || items.Len() == 0 {
		errs = append(errs, "order.items must be a non-empty list")
	}
	for i, item := range items.Array() {
		if !nonEmptyString(item.Get("sku")) {
			errs = append(errs, fmt.Sprintf("order.items[%d].sku must be a non-empty string", i))
		}
		if !positiveWhole(item.Get("qty")) {
			errs = append(errs, fmt.Sprintf("order.items[%d].qty must be a positive whole number", i))
		}
	}
	return errs
}

func handle(in vecron.Value) any {
	order := in.Get("order")
	if errs := check(order); len(errs) > 0 {
		vecron.Warn("order rejected: %d problem(s)", len(errs))
		return vecron.Invalid(errs...)
	}
	id, _ := order.Get("id").String()
	amount, _ := order.Get("amount").Int()
	currency, _ := order.Get("currency").String()
	var count int64
	for _, item := range order.Get("items").Array() {
		n, _ := item.Get("qty").Int()
		count += n
	}
	threshold := 10_000_000.0
	if t, ok := vecron.GetContext("review_threshold"); ok {
		if f, ok := t.Float(); ok {
			threshold = f
		}
	}
	next := "fulfil"
	if float64(amount) >= threshold {
		next = "manual_review"
	}
	if err := vecron.SetContext("last_order_id", id); err != nil {
		vecron.Error("%v", err)
	}
	vecron.Info("order %s: %d item(s), %d %s -> %s", id, count, amount, currency, next)
	return vecron.Route(map[string]any{
		"valid":      true,
		"order_id":   id,
		"amount":     amount,
		"currency":   currency,
		"item_count": count,
	}, next)
}

func main() {}
