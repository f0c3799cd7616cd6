"""The facts a value must share with its quote: numbers, amounts, percentages and dates (as numbers) and
company names, normalised across the ways contracts write them."""

import pytest

from workbench.tasks import fact_check


@pytest.mark.parametrize(
    "text, expected",
    [
        ("本合同总金额为人民币386,000元", {"386000"}),
        ("叁拾捌万陆仟元整", {"386000"}),
        ("38.6万元", {"386000"}),
        ("一百二十天", {"120"}),
        ("两千元", {"2000"}),
        ("百分之三十作为预付款", {"30"}),
        ("2026年11月26日", {"2026", "11", "26"}),
        ("within thirty (30) days, 1,250.50 USD, 12.5%", {"30", "1250.5", "12.5"}),
        ("第一条 一方 百", set()),  # ordinals and words that merely contain a numeral are not amounts
    ],
)
def test_numbers_are_read_the_way_contracts_write_them(text, expected):
    assert fact_check.numbers(text) == expected


@pytest.mark.parametrize(
    "value, quote, missing",
    [
        ("12,000,000 元 … 10,000,000 元", "本合同总金额为人民币386,000元。", ["10000000", "12000000"]),
        ("The total is 386000 yuan.", "合同总金额为人民币叁拾捌万陆仟元整。", []),
        ("386,000", "总金额 386000 元", []),
        ("Payment within 45 days", "Payment is due within 30 days of invoice.", ["45"]),
        (
            "The parties are 南京青石系统集成有限公司 and Party B.",
            "甲方：南京青石系统集成有限公司；乙方：成都远景智能科技有限公司",
            [],
        ),
        ("Signed by 上海天穹数据有限公司", "甲方：南京青石系统集成有限公司", ["上海天穹数据有限公司"]),
        ("Acme Widgets Ltd. pays", "Acme Widgets Ltd. shall pay within thirty (30) days.", []),
        ("The document says: The document says:", "anything at all", []),  # nothing checkable: nothing missing
    ],
)
def test_a_value_is_supported_only_by_a_quote_that_says_the_same(value, quote, missing):
    assert fact_check.unsupported(value, quote) == missing


def test_a_field_shows_its_quote_when_the_value_is_unsupported():
    from workbench.tasks.docqa import Field

    field = Field(
        "payment_terms", "12,000,000 元", "合同总金额为人民币386,000元。", True, 1, False, ("12000000",), True
    )
    assert field.answer == field.quote
    verified, supported = field.marks()
    assert verified == "✅" and supported.startswith("⚠️ the model wrote «12,000,000 元»: 12000000 not in the quote")


@pytest.mark.parametrize(
    "text, trimmed",
    [
        ("The document says: The document says: The document says: The docu", "The document says:"),
        (
            "- Payment terms: - Payment amount: - Payment terms: - Payment amount: - Payment terms:",
            "- Payment terms: - Payment amount:",
        ),
        ("A is paid. A is paid. Then C.", "A is paid. Then C."),
        ("The total is 386,000 yuan, paid in two parts.", "The total is 386,000 yuan, paid in two parts."),
        ("1000 1000 yuan", "1000 1000 yuan"),  # shorter than a phrase: left alone
    ],
)
def test_a_value_that_repeats_itself_is_kept_once(text, trimmed):
    from workbench.tasks.docqa import trim_repetition

    assert trim_repetition(text) == trimmed


def test_a_value_with_nothing_to_check_is_not_marked_as_checked():
    from workbench.tasks.docqa import Field

    vague = Field("parties", "The parties are Party A and Party B.", "甲方：南京青石系统集成有限公司", True, 1)
    assert vague.answer == vague.value and vague.marks() == ("✅", "➖ no figure or name to check")
