"""Real sensors: ADS1115 (I2C), MCP3008 (SPI) and PZEM-004T (Modbus RTU) sources.

Nothing here imports a hardware library at import time; each source does when it
is constructed. :mod:`.registry` maps ``source.type`` to the implementation;
docs/hardware.md describes wiring, sampling limits and the capability model.
"""
