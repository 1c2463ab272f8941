"""Training: the ``train`` command (``run``), the loop (``trainer``), the DeepSpeed door (``engine``), the
run/checkpoint layout (``checkpoint``), export, tracking, attention, hardware peaks and the DeepSpeed JSON.

Imports nothing heavy, so ``biotune plan`` can use :mod:`biotune.train.hardware` and
:mod:`biotune.train.ds_config` without torch. Only modules in this package import ``deepspeed``.
"""
