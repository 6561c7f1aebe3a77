# Build the KV260 overlay: project, block design, synthesis, implementation, bitstream, and copy
# edgestream.bit + edgestream.hwh into build/ (what pynq.Overlay loads).
# NOT RUN IN CI. Usage: vivado -mode batch -source build.tcl  (or ./build.sh)
set ROOT [file normalize [file join [file dirname [info script]] .. .. ..]]
set HERE [file normalize [file dirname [info script]]]
set BD_NAME edgestream
set PROJ [file join $HERE vivado]
set OUT [file join $HERE build]

create_project -force edgestream_kv260 $PROJ -part xck26-sfvc784-2LV-c
set_property board_part xilinx.com:kv260_som:part0:1.4 [current_project]
set_property board_connections {som240_1_connector xilinx.com:kv260_carrier:som240_1_connector:1.3} [current_project]

source [file join $HERE bd.tcl]
add_files -fileset constrs_1 -norecurse [file join $HERE kv260.xdc]

make_wrapper -files [get_files $BD_NAME.bd] -top
add_files -norecurse [glob [file join $PROJ edgestream_kv260.gen sources_1 bd $BD_NAME hdl ${BD_NAME}_wrapper.v]]
set_property top ${BD_NAME}_wrapper [current_fileset]

launch_runs impl_1 -to_step write_bitstream -jobs 8
wait_on_run impl_1
if {[get_property PROGRESS [get_runs impl_1]] != "100%"} { error "implementation failed" }

file mkdir $OUT
file copy -force [glob [file join $PROJ edgestream_kv260.runs impl_1 *.bit]] [file join $OUT edgestream.bit]
file copy -force [glob [file join $PROJ edgestream_kv260.gen sources_1 bd $BD_NAME hw_handoff $BD_NAME.hwh]] \
    [file join $OUT edgestream.hwh]
open_run impl_1
report_utilization -file [file join $OUT utilization.rpt]
report_timing_summary -file [file join $OUT timing.rpt]
puts "overlay: $OUT/edgestream.bit + edgestream.hwh"
