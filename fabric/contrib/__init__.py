"""Optional helpers built on Fabric's core operations: remote file editing
(:mod:`fabric.contrib.files`), project transfer (:mod:`fabric.contrib.project`), console
questions (:mod:`fabric.contrib.console`) and Django settings (:mod:`fabric.contrib.django`)."""
