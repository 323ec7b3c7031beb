"""From retrieved passages to a checked, cited answer: the stages of answering one question.

`Assistant._answer` runs them in this order, each once:
`evidence` (the judge ranks the passages' sentences and picks what the model is shown; refuses
when none answers) → `reader` (the quote-then-answer contract over `prompt`, one streaming pass,
a second turn only when the judge says the answer is there; its checks) → `cite` (every marker
made true). `history` makes a follow-up standalone and `parts` splits a multi-part question before
them and joins the answers after. The model back-ends (`backends`: llama.cpp, an OpenAI-compatible
server, no model) are given to the reader as an object; nothing here imports them but the facade.
"""
