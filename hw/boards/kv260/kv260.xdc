# KV260 overlay constraints. The design has no PL pins: every port goes to the PS (HPM0_FPD, the HP
# ports of the configuration, pl_clk0, pl_resetn0, pl_ps_irq0); the PS IP constrains pl_clk0 itself.
# NOT RUN IN CI.
set_property BITSTREAM.GENERAL.COMPRESS TRUE [current_design]
