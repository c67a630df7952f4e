"""Hyper-parameters logged inside event files, for the run's ``hparams``.

Two writers put them there:

- the hparams plugin: torch's ``add_hparams``, Lightning's ``TensorBoardLogger`` and Keras'
  ``hp.KerasCallback`` write a value tagged ``_hparams_/session_start_info`` whose plugin
  data holds the hyper-parameters (beside it, the experiment and the session end, which hold
  none and are still counted as skipped);
- the Hugging Face Trainer's ``TensorBoardCallback``, which writes its ``TrainingArguments`` as
  JSON into a text summary (tag ``args/text_summary``, torch and tensorboardX alike) and the
  model's configuration into another (``model_config/text_summary``), kept under
  ``model_config.``.

Each payload is parsed by :mod:`rundoctor.readers.sidefiles` within its bounds; one that breaks
them or is not what it should be is counted as skipped, as every value the reader does not
read.
"""

from __future__ import annotations

from tensorboard.compat.proto import summary_pb2

from rundoctor.readers import sidefiles

HPARAMS_PLUGIN = "hparams"
TEXT_PLUGIN = "text"
# Text summary tag -> the prefix its JSON object's keys get.  Training arguments keep their own
# names (``learning_rate``), as the trial parameters of a trainer_state.json do.
HUGGING_FACE_TEXTS = {"args/text_summary": "", "model_config/text_summary": "model_config."}
# DataType.DT_STRING in tensorboard's types.proto.
_STRING_DTYPE = 7


def read_hparams(hparams: dict[str, str], value: summary_pb2.Summary.Value) -> bool:
    """Add the hyper-parameters ``value`` holds to ``hparams`` (a key already there keeps its
    first value: a resumed run logs them again); False when it holds none, to be counted as
    skipped."""
    plugin = value.metadata.plugin_data.plugin_name
    kind = value.WhichOneof("value")
    found: dict[str, str] | None = None
    if kind == "simple_value":  # a point, whatever its metadata says: kept as one
        return False
    if plugin == HPARAMS_PLUGIN:
        found = sidefiles.hparams_plugin_texts(value.metadata.plugin_data.content)
    elif plugin == TEXT_PLUGIN and value.tag in HUGGING_FACE_TEXTS and kind == "tensor":
        tensor = value.tensor
        if tensor.dtype == _STRING_DTYPE and len(tensor.string_val) == 1:
            texts = sidefiles.json_object_texts(tensor.string_val[0])
            prefix = HUGGING_FACE_TEXTS[value.tag]
            found = None if texts is None else {prefix + key: text for key, text in texts.items()}
    if found is None:
        return False
    for key, text in found.items():
        hparams.setdefault(key, text)
    return True
