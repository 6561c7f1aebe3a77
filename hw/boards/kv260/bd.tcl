# edgestream accelerator overlay for the AMD Kria KV260: Vivado block design.
# NOT RUN IN CI (Vivado cannot run there). Tested flow: Vivado 2023.2 or 2024.1 (docs/board.md).
#
#   Zynq UltraScale+ PS (KV260 board preset)
#     M_AXI_HPM0_FPD --SmartConnect (AXI4 -> AXI4-Lite)--> edgestream_accel_0/s_axil   (registers)
#     edgestream_accel_0/m_axi --SmartConnect--> S_AXI_HP0_FPD (128 bit)                (DDR)
#     edgestream_accel_0/irq --> pl_ps_irq0
#     pl_clk0 = 250 MHz for everything in the PL; proc_sys_reset from pl_resetn0
#
# Sourced by build.tcl with ROOT (repository root) and BD_NAME set.

set rtl_dir [file join $ROOT hw rtl]
set gen_dir [file join $ROOT hw generated]
add_files -norecurse [file join $gen_dir es_regs_pkg.sv]
foreach f {tlmm_fifo tlmm_table_builder tlmm_table_mem tlmm_wdecode tlmm_lanes tlmm_engine
           es_axi_rd es_axi_wr es_act_unpack es_axil_csr es_seq es_i2f es_fmul es_dequant
           edgestream_accel} {
    add_files -norecurse [file join $rtl_dir $f.sv]
}
set_property file_type SystemVerilog [get_files *.sv]
update_compile_order -fileset sources_1

create_bd_design $BD_NAME

# ---- processing system
set ps [create_bd_cell -type ip -vlnv xilinx.com:ip:zynq_ultra_ps_e zynq_ultra_ps_e_0]
apply_bd_automation -rule xilinx.com:bd_rule:zynq_ultra_ps_e -config {apply_board_preset "1"} $ps
set_property -dict [list \
    CONFIG.PSU__USE__M_AXI_GP0 {1} CONFIG.PSU__MAXIGP0__DATA_WIDTH {32} \
    CONFIG.PSU__USE__M_AXI_GP1 {0} CONFIG.PSU__USE__M_AXI_GP2 {0} \
    CONFIG.PSU__USE__S_AXI_GP2 {1} CONFIG.PSU__SAXIGP2__DATA_WIDTH {128} \
    CONFIG.PSU__USE__IRQ0 {1} \
    CONFIG.PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ {250} \
] $ps

# ---- accelerator (RTL module reference: the cell name is what pynq's ip_dict and the driver use)
set acc [create_bd_cell -type module -reference edgestream_accel edgestream_accel_0]

# ---- clock and reset
set rst [create_bd_cell -type ip -vlnv xilinx.com:ip:proc_sys_reset rst_pl]
connect_bd_net [get_bd_pins $ps/pl_clk0] [get_bd_pins $acc/clk] [get_bd_pins $rst/slowest_sync_clk] \
    [get_bd_pins $ps/maxihpm0_fpd_aclk] [get_bd_pins $ps/saxihp0_fpd_aclk]
connect_bd_net [get_bd_pins $ps/pl_resetn0] [get_bd_pins $rst/ext_reset_in]
connect_bd_net [get_bd_pins $rst/peripheral_aresetn] [get_bd_pins $acc/rst_n]

# ---- control path: HPM0 -> AXI4-Lite registers
set sc_ctl [create_bd_cell -type ip -vlnv xilinx.com:ip:smartconnect sc_ctl]
set_property -dict [list CONFIG.NUM_SI {1} CONFIG.NUM_MI {1}] $sc_ctl
connect_bd_intf_net [get_bd_intf_pins $ps/M_AXI_HPM0_FPD] [get_bd_intf_pins $sc_ctl/S00_AXI]
connect_bd_intf_net [get_bd_intf_pins $sc_ctl/M00_AXI] [get_bd_intf_pins $acc/s_axil]
connect_bd_net [get_bd_pins $ps/pl_clk0] [get_bd_pins $sc_ctl/aclk]
connect_bd_net [get_bd_pins $rst/peripheral_aresetn] [get_bd_pins $sc_ctl/aresetn]

# ---- data path: accelerator AXI4 master -> HP0 (DDR)
set sc_mem [create_bd_cell -type ip -vlnv xilinx.com:ip:smartconnect sc_mem]
set_property -dict [list CONFIG.NUM_SI {1} CONFIG.NUM_MI {1}] $sc_mem
connect_bd_intf_net [get_bd_intf_pins $acc/m_axi] [get_bd_intf_pins $sc_mem/S00_AXI]
connect_bd_intf_net [get_bd_intf_pins $sc_mem/M00_AXI] [get_bd_intf_pins $ps/S_AXI_HP0_FPD]
connect_bd_net [get_bd_pins $ps/pl_clk0] [get_bd_pins $sc_mem/aclk]
connect_bd_net [get_bd_pins $rst/peripheral_aresetn] [get_bd_pins $sc_mem/aresetn]

# ---- interrupt
connect_bd_net [get_bd_pins $acc/irq] [get_bd_pins $ps/pl_ps_irq0]

# ---- addresses: 4 KiB register window; the accelerator sees all of DDR (low and high)
assign_bd_address
set_property range 4K [get_bd_addr_segs {zynq_ultra_ps_e_0/Data/SEG_edgestream_accel_0_reg0}]
validate_bd_design
save_bd_design
