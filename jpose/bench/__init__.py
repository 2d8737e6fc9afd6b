"""Every timing in jpose, and `python -m jpose.bench` (`__main__`), the command that runs
them; library modules hold no timing code. One module a topic: `train_step` (a config's
compiled step: compile, step time, FLOPs, MFU, memory; lowering for other backends),
`step_shares` (where an image trainer's step time goes), `op_times` (a profile's top
ops), `inputs` (input pipelines and augmentation), `rendering` (the renderers),
`integral_net` (a ResNet pose net's step alone), `exported` (`jpose.export` latency),
`timing` (how the image stages time a call) and `suite` (`--suite gpu`).
"""
