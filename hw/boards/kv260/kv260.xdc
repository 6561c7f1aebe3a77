# KV260 overlay constraints. The design has no PL pins: every port goes to the PS (HPM0, HP0,
# pl_clk0, pl_resetn0, pl_ps_irq0), whose clock is constrained by the PS IP (pl_clk0 = 250 MHz).
# NOT RUN IN CI.
set_property BITSTREAM.GENERAL.COMPRESS TRUE [current_design]
