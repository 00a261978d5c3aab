"""Using a trained model: self-describing exports, prediction on new faces, ONNX.

* ``export_run`` (``tan export``): a run's checkpoint -> ``<name>-<hash8>.pt`` (tensors
  and JSON metadata, ``torch.load(weights_only=True)``-loadable) or ``.onnx`` (dynamic
  batch, metadata in ``metadata_props``), plus a Markdown model card beside it.
* ``load_model(path)`` -> ``LoadedModel(model, transform, meta)``: the network (or an
  onnxruntime session with the same call interface), the ``InferenceTransform`` that
  reproduces evaluation's preprocessing exactly, and the metadata (classes in order,
  transform, config, dataset and protocol, test metrics with the epoch-selection rule,
  parameter count, hashes).
* ``predict_inputs`` (``tan predict``; also ``LoadedModel.predict``): images, folders
  and lists -> probabilities, predicted class, attention, optionally the embedding;
  unreadable files and faceless images skipped with a reason; optional Haar-cascade
  face cropping (``FaceDetector``) and class mapping to another label order
  (``class_mapping``).

Two lines::

    from tanlib.inference import load_model
    model, transform, meta = load_model("models/tan-synthfer-best-1a2b3c4d.pt")
"""

from .classmap import NAMED_ORDERS, ClassMapping, class_mapping, read_class_map
from .export import ExportResult, export_run
from .faces import FaceDetector
from .predict import Predictions, Skipped, collect_inputs, predict_inputs, write_results
from .transform import InferenceTransform
from .weights import LoadedModel, OnnxModel, load_model, read_weights

__all__ = [
    "ClassMapping",
    "ExportResult",
    "FaceDetector",
    "InferenceTransform",
    "LoadedModel",
    "NAMED_ORDERS",
    "OnnxModel",
    "Predictions",
    "Skipped",
    "class_mapping",
    "collect_inputs",
    "export_run",
    "load_model",
    "predict_inputs",
    "read_class_map",
    "read_weights",
    "write_results",
]
