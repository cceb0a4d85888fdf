"""{{name}}: checks an order, answers a validation verdict for a bad one, and routes a good one to
`fulfil` or, at or above the job variable `review_threshold` (default 10,000,000), to
`manual_review`. Built on the vecron module (vecron-sdk/, docs/sdk/python.md), which hides the ABI.

This file is imported once, when the module is built; each run calls process(input).
"""
import vecron

from checks import currency_code, non_empty_string, positive_whole

DEFAULT_THRESHOLD = 10_000_000


def problems(order):
    """Every problem of the order, each naming the field it is about."""
    if not isinstance(order, dict):
        return ['order must be an object']
    errors = []
    if not non_empty_string(order.get('id')):
        errors.append('order.id must be a non-empty string')
    if not positive_whole(order.get('amount')):
        errors.append('order.amount must be a positive whole number')
    if not currency_code(order.get('currency')):
        errors.append('order.currency must be a 3-letter code')
    items = order.get('items')
    if not isinstance(items, list) or not items:
        errors.append('order.items must be a non-empty list')
    for i, item in enumerate(items if isinstance(items, list) else []):
        item = item if isinstance(item, dict) else {}
        if not non_empty_string(item.get('sku')):
            errors.append(f'order.items[{i}].sku must be a non-empty string')
        if not positive_whole(item.get('qty')):
            errors.append(f'order.items[{i}].qty must be a positive whole number')
    return errors


def process(input):
    order = input.get('order') if isinstance(input, dict) else None
    errors = problems(order)
    if errors:
        vecron.log.warn(f'order rejected: {len(errors)} problem(s)')
        return vecron.invalid(errors)

    count = sum(int(item['qty']) for item in order['items'])
    threshold = vecron.context.get('review_threshold', DEFAULT_THRESHOLD)
    next_step = 'manual_review' if order['amount'] >= threshold else 'fulfil'

    # For later steps: {{steps.module.output...}} in a template, vecron.context.get('last_order_id') in a module.
    vecron.context.set('last_order_id', order['id'])
    vecron.log.info(f"order {order['id']}: {count} item(s), {order['amount']} {order['currency']} -> {next_step}")

    return vecron.route(next_step, {
        'valid': True,
        'order_id': order['id'],
        'amount': order['amount'],
        'currency': order['currency'],
        'item_count': count,
    })
