"""CMCD's Gradio app (also the Hugging Face Spaces entry point).

For now it shows the paired data of each registered pair; distillation, UMAP, retrieval and the
draw / upload / record panels come with the app issue.
"""

import os

# Offline before gradio is imported: no analytics, no hub.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import gradio as gr  # noqa: E402

from cmcd import pairs  # noqa: E402
from cmcd.contact_sheet import contact_sheet  # noqa: E402

INTRO = """# CMCD: cross-modality contrastive distillation
A teacher trained on photos (RGB) passes what it knows to a student that sees another modality
(a sketch, a depth map, a spoken digit), using only unlabeled pairs. Below: the paired data each
pair is built from, rendered offline from real MNIST and Fashion-MNIST images and synthetic
speech. Each row is one class; every photo sits next to its target."""


def show_pair(name: str):
    data = pairs.load_pair(name)
    spec = data.spec
    pairing = ("class pairs (any clip of the same digit, as in AV-MNIST)" if spec.pairing == "class"
               else "instance pairs (the same item in both modalities)")
    sizes = ", ".join(f"{split}: {count:,}" for split, count in data.sizes().items())
    caption = (f"**{name}**: rgb → {spec.target}, {pairing}. Gap {data.gap} ({spec.gap_meaning}). "
               f"Splits: {sizes}. Source: {data.source_origin}.")
    return contact_sheet(data), caption


def build_demo() -> gr.Blocks:
    with gr.Blocks(title="CMCD") as demo:
        gr.Markdown(INTRO)
        choice = gr.Dropdown(list(pairs.PAIRS), value="digits-sketch", label="Modality pair")
        caption = gr.Markdown()
        sheet = gr.Image(label="Contact sheet", type="pil", interactive=False)
        choice.change(show_pair, choice, [sheet, caption])
        demo.load(show_pair, choice, [sheet, caption])
    return demo


if __name__ == "__main__":
    build_demo().queue(default_concurrency_limit=2, max_size=32).launch(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
    )
