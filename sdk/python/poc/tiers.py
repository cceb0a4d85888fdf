import json, sys
def tier(v):
    return "platinum" if v > 100000 else "gold" if v > 50000 else "silver" if v > 10000 else "bronze"
ctx = json.load(sys.stdin)
out = [{"id": c["id"], "tier": tier(c["total_orders"])} for c in ctx["customers"]]
json.dump({"customers": out}, sys.stdout)
