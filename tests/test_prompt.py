from __future__ import annotations

from rag.answering.prompt import QUOTE_PROMPT, leaks_system_prompt
from rag.text.script import in_script


def test_a_reply_repeating_the_instructions_is_caught_in_either_script():
    clause = QUOTE_PROMPT.split("。")[1]  # 只根据用户给出的资料回答问题
    assert leaks_system_prompt(f"好的。{clause}。") and leaks_system_prompt(in_script(f"好的。{clause}。", "zh-Hant"))
    for answer in ("乐陵市总工会2022年成立了15个基层工会[1]。", "資料中沒有提到。", "The union opened 15 stations.[1]"):
        assert not leaks_system_prompt(answer), answer
