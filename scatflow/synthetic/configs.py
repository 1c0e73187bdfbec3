"""The ready-to-run configs ``scatflow example`` writes beside its data (TOML templates: ``{data}``,
``{start}``, ``{end}``, ``{store}``; doubled braces are TOML's)."""

# The tutorial's transformation step, shared by both example configs.
_TUTORIAL_SECTIONS = """
[network]
window_s = 40.0
overlap = 0.5
reduce = "median"
layers = [
  {{ octaves = 6, resolution = 4, quality = 2 }},
  {{ octaves = 6, resolution = 1, quality = 2 }},
]

[output]
store = "{store}"
dtype = "float32"

[cluster]
kind = "local"
"""

EXAMPLE_CONFIG = """\
# scatflow run configuration: the scatseisnet tutorial's transformation step.
# Every key is documented in the README ("Configuration"). Relative paths are
# relative to this file.

[input]
paths = ["{data}"]
select = ["*.*.*.HH?"]
start = "{start}"
end = "{end}"
""" + _TUTORIAL_SECTIONS

ARCHIVE_CONFIG = """\
# scatflow run configuration for the synthetic SDS archive (several stations,
# several days, one station at another sampling rate, a gap and a missing day).

[input]
sds = "archive"
select = ["X9.*.*.*"]
start = "{start}"
end = "{end}"

# Raw counts to ground velocity, high-passed at 1 Hz as in the tutorial, and the
# 20 Hz station resampled to 50 Hz like the others, so all three share one
# frequency axis (scatflow.open_results(store, combine=True)). pre_filt ends
# below the 20 Hz station's Nyquist frequency (10 Hz), so every station keeps
# the same band. Samples within the pad (printed by --dry-run) of a gap count
# as not recorded.
[preprocess]
inventory = ["archive/stations.xml"]
response = "velocity"
pre_filt = [0.2, 0.5, 8.0, 9.5]
water_level = 60.0
filter = {{ type = "highpass", freq = 1.0, corners = 4, zerophase = true }}
sampling_rate = 50.0
""" + _TUTORIAL_SECTIONS + """
# scatflow analyze: one model for the three stations. match = "component" aligns
# channels by their last letter, so the 20 Hz BH? station (resampled to 50 Hz
# above) shares the model with the HH? stations.
[analysis]
joint = true
match = "component"
"""
