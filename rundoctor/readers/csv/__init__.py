"""CSV training logs: one file is one run, in five flavours.

- ``lightning-csv``: PyTorch Lightning ``metrics.csv``; sparse rows (train-step, train-epoch and
  validation rows apart), a ``step`` and an ``epoch`` column; ``hparams.yaml`` beside it.
- ``ultralytics-csv``: YOLOv5 / Ultralytics 8.x ``results.csv``; cells padded with spaces, one
  row per epoch, epochs repeated after a resume.
- ``keras-csv``: Keras ``CSVLogger`` (``training.log``); ``epoch`` first, then the metric names
  sorted, ``NA`` for a metric missing in an epoch.
- ``wide-csv``: any CSV with a step, global_step, iteration, iter or epoch column.
- ``long-csv``: one point a row, columns (step, tag, value) and an optional wall time.

Every numeric cell becomes one point; an empty (or ``NA``) cell is no point, while ``nan`` and
``inf`` are kept as logged; ``true``/``false`` read as 1 and 0, as pandas reads them.  Points
are grouped by column, each column in file order.

How a file is read.  The fast path parses the whole file once with pandas' C engine and
turns each column into points with one mask, copied straight into the run's arrays.  It is
exact because pandas is told that only an empty cell is missing: a logged ``nan`` is then not a
float to the C parser, so its column (or that chunk of it) stays text, which :func:`~rundoctor.readers.csv.table._numbers`
converts with Python's own float semantics.  A NaN in a float column therefore always means
"empty cell", and a NaN that came from text always means "logged nan".  pandas silently pads
rows with too few fields, so the raw bytes are counted too (commas and line ends): when they do
not add up, when the first row has too many fields (pandas drops them, and then takes later rows
of that length too) or pandas meets a later row with too many fields, the file goes to the
line-by-line path, which finds and reports each bad line.  Blank lines before the header, and
NUL bytes after it, also take the line path.
"""

from __future__ import annotations

from rundoctor.readers.base import Reader, deferred, file_read
from rundoctor.readers.csv import header
from rundoctor.readers.follow import appended_lines

# Sniffed in this order, after the JSON readers; the reader name is the run's format.
READERS: tuple[Reader, ...] = (
    Reader("lightning-csv", file_read(deferred("rundoctor.readers.csv.flavours", "read_lightning")), appended_lines(header=True),
           sniff=header._sniff_lightning),
    Reader("ultralytics-csv", file_read(deferred("rundoctor.readers.csv.flavours", "read_ultralytics")), appended_lines(header=True),
           sniff=header._sniff_ultralytics),
    Reader("keras-csv", file_read(deferred("rundoctor.readers.csv.flavours", "read_keras")), appended_lines(header=True), sniff=header._sniff_keras),
    Reader("long-csv", file_read(deferred("rundoctor.readers.csv.flavours", "read_long")), appended_lines(header=True), sniff=header._sniff_long),
    Reader("wide-csv", file_read(deferred("rundoctor.readers.csv.flavours", "read_wide")), appended_lines(header=True), sniff=header._sniff_wide),
)
