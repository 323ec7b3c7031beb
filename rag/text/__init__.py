"""The language toolkit every stage shares, one module per concern:

- `script`: simplified and traditional (OpenCC), the search form, a question's language, jieba;
- `sentences`: the sentence splitter of chunks, evidence and the judge's pairs;
- `terms`: BM25 terms and Han character pairs;
- `numbers`: numbers as digits, Chinese numerals and 万/亿 scales;
- `entities`: the names a question asks about and whether a text holds them;
- `injection`: instructions planted in articles;
- `lexicon`: word lists used by more than one stage.

Repairing the seed text (glued pinyin, page breaks, repeats) stays in `clean.py`; decoding bytes
is the loaders' (`loaders/decode.py`).
"""
