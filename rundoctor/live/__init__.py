"""rundoctor inside a training loop: the checks run while the run is written, and a run whose
loss went NaN or exploded is stopped before it burns the rest of its budget.

:class:`~rundoctor.live.engine.LiveDoctor` is the framework-neutral core; the callbacks wrap it
in each framework's own callback API, each in its own module so that importing one never
imports another framework:

- :class:`rundoctor.live.lightning.RunDoctorCallback` (``pip install 'rundoctor[lightning]'``)
- :class:`rundoctor.live.keras.RunDoctorCallback` (``pip install 'rundoctor[keras]'``)
- :class:`rundoctor.live.transformers.RunDoctorCallback` (``pip install 'rundoctor[transformers]'``)
"""

from rundoctor.live.engine import Checkup, LiveDoctor, LiveRun, StopPolicy

__all__ = ["Checkup", "LiveDoctor", "LiveRun", "StopPolicy"]
