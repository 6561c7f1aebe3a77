// Simulation harness for sim/tb_es_fp.py: every floating-point primitive (and every parameter set the
// units use) beside one clock, so that both simulators build and start once for the whole bench.
// Each instance's ports are the harness ports <instance>_<port>; not synthesized.
module tb_es_fp_top (
    input  logic        clk,
    input  logic        rst_n,
    // es_fadd binary32 / binary64
    input  logic        fadd32_en, fadd32_sub,
    input  logic [31:0] fadd32_a, fadd32_b,
    output logic [31:0] fadd32_y,
    input  logic        fadd64_en, fadd64_sub,
    input  logic [63:0] fadd64_a, fadd64_b,
    output logic [63:0] fadd64_y,
    // es_f2i: int8 quantizer, 0..32768 attention weights, int32
    input  logic        f2i8_en,
    input  logic [31:0] f2i8_x,
    input  logic [9:0]  f2i8_k,
    output logic [7:0] f2i8_y,
    input  logic        f2ip_en,
    input  logic [31:0] f2ip_x,
    input  logic [9:0]  f2ip_k,
    output logic [16:0] f2ip_y,
    input  logic        f2i32_en,
    input  logic [31:0] f2i32_x,
    input  logic [9:0]  f2i32_k,
    output logic [31:0] f2i32_y,
    // es_fcvt, es_exp2neg
    input  logic        fcvt_en,
    input  logic [1:0]  fcvt_op,
    input  logic [63:0] fcvt_a,
    input  logic [11:0] fcvt_k,
    output logic [63:0] fcvt_y,
    input  logic        exp2_en,
    input  logic [31:0] exp2_z,
    output logic [31:0] exp2_y,
    // sequential units, 4 copies each (driven side by side: the bench's time is per clock cycle)
    input  logic        fdiv0_start, fdiv0_dbl,
    input  logic [63:0] fdiv0_a, fdiv0_b,
    output logic        fdiv0_busy, fdiv0_done,
    output logic [63:0] fdiv0_y,
    input  logic        fdiv1_start, fdiv1_dbl,
    input  logic [63:0] fdiv1_a, fdiv1_b,
    output logic        fdiv1_busy, fdiv1_done,
    output logic [63:0] fdiv1_y,
    input  logic        fdiv2_start, fdiv2_dbl,
    input  logic [63:0] fdiv2_a, fdiv2_b,
    output logic        fdiv2_busy, fdiv2_done,
    output logic [63:0] fdiv2_y,
    input  logic        fdiv3_start, fdiv3_dbl,
    input  logic [63:0] fdiv3_a, fdiv3_b,
    output logic        fdiv3_busy, fdiv3_done,
    output logic [63:0] fdiv3_y,
    input  logic        fmul0_start,
    input  logic [63:0] fmul0_a, fmul0_b,
    output logic        fmul0_busy, fmul0_done,
    output logic [63:0] fmul0_y,
    input  logic        fmul1_start,
    input  logic [63:0] fmul1_a, fmul1_b,
    output logic        fmul1_busy, fmul1_done,
    output logic [63:0] fmul1_y,
    input  logic        fmul2_start,
    input  logic [63:0] fmul2_a, fmul2_b,
    output logic        fmul2_busy, fmul2_done,
    output logic [63:0] fmul2_y,
    input  logic        fmul3_start,
    input  logic [63:0] fmul3_a, fmul3_b,
    output logic        fmul3_busy, fmul3_done,
    output logic [63:0] fmul3_y,
    input  logic        fsqrt0_start,
    input  logic [63:0] fsqrt0_a,
    output logic        fsqrt0_busy, fsqrt0_done,
    output logic [63:0] fsqrt0_y,
    input  logic        fsqrt1_start,
    input  logic [63:0] fsqrt1_a,
    output logic        fsqrt1_busy, fsqrt1_done,
    output logic [63:0] fsqrt1_y,
    input  logic        fsqrt2_start,
    input  logic [63:0] fsqrt2_a,
    output logic        fsqrt2_busy, fsqrt2_done,
    output logic [63:0] fsqrt2_y,
    input  logic        fsqrt3_start,
    input  logic [63:0] fsqrt3_a,
    output logic        fsqrt3_busy, fsqrt3_done,
    output logic [63:0] fsqrt3_y
);
    es_fadd #(.W(32)) u_fadd32 (.clk, .en(fadd32_en), .sub(fadd32_sub), .a(fadd32_a), .b(fadd32_b),
                                .y(fadd32_y));
    es_fadd #(.W(64)) u_fadd64 (.clk, .en(fadd64_en), .sub(fadd64_sub), .a(fadd64_a), .b(fadd64_b),
                                .y(fadd64_y));
    es_f2i #(.W(8), .LO(-128), .HI(127)) u_f2i8 (.clk, .en(f2i8_en), .x(f2i8_x), .k(f2i8_k), .y(f2i8_y));
    es_f2i #(.W(17), .LO(0), .HI(32768)) u_f2ip (.clk, .en(f2ip_en), .x(f2ip_x), .k(f2ip_k), .y(f2ip_y));
    es_f2i u_f2i32 (.clk, .en(f2i32_en), .x(f2i32_x), .k(f2i32_k), .y(f2i32_y));
    es_fcvt u_fcvt (.clk, .en(fcvt_en), .op(fcvt_op), .a(fcvt_a), .k(fcvt_k), .y(fcvt_y));
    es_exp2neg u_exp2 (.clk, .en(exp2_en), .z(exp2_z), .y(exp2_y));
    es_fdiv u_fdiv0 (.clk, .rst_n, .start(fdiv0_start), .dbl(fdiv0_dbl), .a(fdiv0_a), .b(fdiv0_b), .busy(fdiv0_busy),
                   .done(fdiv0_done), .y(fdiv0_y));
    es_fdiv u_fdiv1 (.clk, .rst_n, .start(fdiv1_start), .dbl(fdiv1_dbl), .a(fdiv1_a), .b(fdiv1_b), .busy(fdiv1_busy),
                   .done(fdiv1_done), .y(fdiv1_y));
    es_fdiv u_fdiv2 (.clk, .rst_n, .start(fdiv2_start), .dbl(fdiv2_dbl), .a(fdiv2_a), .b(fdiv2_b), .busy(fdiv2_busy),
                   .done(fdiv2_done), .y(fdiv2_y));
    es_fdiv u_fdiv3 (.clk, .rst_n, .start(fdiv3_start), .dbl(fdiv3_dbl), .a(fdiv3_a), .b(fdiv3_b), .busy(fdiv3_busy),
                   .done(fdiv3_done), .y(fdiv3_y));
    es_fmul64 u_fmul0 (.clk, .rst_n, .start(fmul0_start), .a(fmul0_a), .b(fmul0_b), .busy(fmul0_busy),
                     .done(fmul0_done), .y(fmul0_y));
    es_fmul64 u_fmul1 (.clk, .rst_n, .start(fmul1_start), .a(fmul1_a), .b(fmul1_b), .busy(fmul1_busy),
                     .done(fmul1_done), .y(fmul1_y));
    es_fmul64 u_fmul2 (.clk, .rst_n, .start(fmul2_start), .a(fmul2_a), .b(fmul2_b), .busy(fmul2_busy),
                     .done(fmul2_done), .y(fmul2_y));
    es_fmul64 u_fmul3 (.clk, .rst_n, .start(fmul3_start), .a(fmul3_a), .b(fmul3_b), .busy(fmul3_busy),
                     .done(fmul3_done), .y(fmul3_y));
    es_fsqrt u_fsqrt0 (.clk, .rst_n, .start(fsqrt0_start), .a(fsqrt0_a), .busy(fsqrt0_busy), .done(fsqrt0_done),
                    .y(fsqrt0_y));
    es_fsqrt u_fsqrt1 (.clk, .rst_n, .start(fsqrt1_start), .a(fsqrt1_a), .busy(fsqrt1_busy), .done(fsqrt1_done),
                    .y(fsqrt1_y));
    es_fsqrt u_fsqrt2 (.clk, .rst_n, .start(fsqrt2_start), .a(fsqrt2_a), .busy(fsqrt2_busy), .done(fsqrt2_done),
                    .y(fsqrt2_y));
    es_fsqrt u_fsqrt3 (.clk, .rst_n, .start(fsqrt3_start), .a(fsqrt3_a), .busy(fsqrt3_busy), .done(fsqrt3_done),
                    .y(fsqrt3_y));
endmodule
