"""The gapscale command line and one module per DVC stage (read inputs, call analysis/, write outputs)."""
