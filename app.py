"""Minimal search page until the chat issue lands: `python app.py`."""
from __future__ import annotations

import argparse

import gradio as gr

from rag import Assistant


def build(assistant: Assistant) -> gr.Blocks:
    def search(question: str, k: int) -> str:
        passages = assistant.retrieve(question, k=int(k))
        return "\n\n".join(f"**[{i}] {p.title}** — `{p.source}` {p.start}-{p.end}\n\n{p.text}" for i, p in enumerate(passages, 1))

    with gr.Blocks(title="zhiwen", analytics_enabled=False) as demo:
        question = gr.Textbox(label="Question")
        k = gr.Slider(1, 10, value=5, step=1, label="Passages")
        out = gr.Markdown()
        question.submit(search, [question, k], out)
    return demo


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7860)
    args = parser.parse_args()
    assistant = Assistant()
    assistant.retriever  # build or open the index before serving
    build(assistant).launch(server_name=args.host, server_port=args.port)
