"""Field checks of the order (imported by main.py: a project can have as many modules as it likes)."""


def non_empty_string(v):
    return isinstance(v, str) and v != ''


def positive_whole(v):
    # JSON has one number type: 3 and 3.0 are the same amount; true is not a number.
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return False
    return v > 0 and float(v).is_integer()


def currency_code(v):
    return isinstance(v, str) and len(v) == 3 and v.isascii() and v.isupper() and v.isalpha()
