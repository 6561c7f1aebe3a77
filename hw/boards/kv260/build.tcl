# Build the KV260 overlay: project, block design, synthesis, implementation, bitstream; then, only if
# timing is met (setup WNS >= 0 and hold WHS >= 0), copy edgestream.bit + edgestream.hwh into build/
# (what pynq.Overlay loads, the two side by side).
# NOT RUN: Vivado cannot run in this project's CI and no one has run this script yet (docs/board.md).
#
# Usage (build.sh does this): vivado -mode batch -source build.tcl -tclargs GEN_DIR [JOBS]
#   GEN_DIR: what `python -m edgestream.vivado --out GEN_DIR` wrote for the configuration to build
#   (es_regs_pkg.sv, edgestream_accel_wrapper.v, bd.tcl, sources.tcl).
set HERE [file normalize [file dirname [info script]]]
set ROOT [file normalize [file join $HERE .. .. ..]]
set GEN [file normalize [expr {[llength $argv] > 0 ? [lindex $argv 0] : [file join $HERE build gen]}]]
set JOBS [expr {[llength $argv] > 1 ? [lindex $argv 1] : 8}]
set BD_NAME edgestream
set OUT [file join $HERE build]
set PROJ [file join $OUT vivado]
source [file join $GEN sources.tcl]

# Board files in batch mode: Vivado searches only its own install for boards unless board.repoPaths
# names the board store's local copy (Kria-PYNQ's base.tcl does exactly this; the store is filled once
# from the GUI or with xhub::install). EDGESTREAM_BOARD_REPO adds a directory of unpacked board files.
set repos {}
if {[info exists ::env(EDGESTREAM_BOARD_REPO)]} { lappend repos $::env(EDGESTREAM_BOARD_REPO) }
if {![catch {set store [get_property LOCAL_ROOT_DIR [xhub::get_xstores xilinx_board_store]]}]} {
    lappend repos $store
}
if {[llength $repos] > 0} { set_param board.repoPaths $repos }
set board [get_board_parts $BOARD_PART_GLOB -latest_file_version]
if {$board eq ""} {
    error "no board part matching $BOARD_PART_GLOB: install the Kria KV260 board files (Vivado: Tools > \
Vivado Store > Boards, or xhub::install) or set EDGESTREAM_BOARD_REPO to a directory holding them"
}
puts "edgestream: board part $board, configuration $CONFIG_ID at $CLOCK_MHZ MHz, sources from $GEN"

create_project -force edgestream_kv260 $PROJ -part $PART
set_property board_part $board [current_project]
es_add_sources $ROOT $GEN
source [file join $GEN bd.tcl]
add_files -fileset constrs_1 -norecurse [file join $HERE kv260.xdc]
make_wrapper -files [get_files $BD_NAME.bd] -top
add_files -norecurse [file join $PROJ edgestream_kv260.gen sources_1 bd $BD_NAME hdl ${BD_NAME}_wrapper.v]
set_property top ${BD_NAME}_wrapper [current_fileset]
update_compile_order -fileset sources_1

launch_runs impl_1 -to_step write_bitstream -jobs $JOBS
wait_on_run impl_1
if {[get_property PROGRESS [get_runs impl_1]] ne "100%"} {
    error "implementation did not finish: [get_property STATUS [get_runs impl_1]]"
}

file mkdir $OUT
open_run impl_1
report_utilization -file [file join $OUT utilization.rpt]
report_timing_summary -max_paths 20 -file [file join $OUT timing.rpt]
# Worst setup and hold slack over all paths: a bitstream with negative slack may compute wrong
# results, so none is copied (the routed run's files stay in build/vivado for inspection).
set wns [get_property SLACK [get_timing_paths -delay_type max -max_paths 1 -nworst 1]]
set whs [get_property SLACK [get_timing_paths -delay_type min -max_paths 1 -nworst 1]]
puts "edgestream: WNS $wns ns, WHS $whs ns at $CLOCK_MHZ MHz"
if {$wns eq "" || $whs eq "" || $wns < 0 || $whs < 0} {
    error "timing not met (WNS '$wns' ns, WHS '$whs' ns; build/timing.rpt): no edgestream.bit written. \
Build a configuration with a lower clock_mhz (python -m edgestream.vivado --hw-config ...)"
}
set bit [glob [file join $PROJ edgestream_kv260.runs impl_1 ${BD_NAME}_wrapper.bit]]
set hwh [glob [file join $PROJ edgestream_kv260.gen sources_1 bd $BD_NAME hw_handoff $BD_NAME.hwh]]
file copy -force $bit [file join $OUT edgestream.bit]
file copy -force $hwh [file join $OUT edgestream.hwh]
set fd [open [file join $OUT config_id.txt] w]
puts $fd $CONFIG_ID
close $fd
puts "edgestream: overlay $OUT/edgestream.bit + edgestream.hwh (configuration $CONFIG_ID)"
