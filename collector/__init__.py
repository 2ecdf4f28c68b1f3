"""GridGuard collector: sources, DSP, events, sinks and the command line."""
