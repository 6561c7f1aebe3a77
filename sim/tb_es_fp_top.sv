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
    // es_f2i: int8 quantizer, 0..32768 probabilities, int32
    input  logic        f2i8_en,
    input  logic [31:0] f2i8_x,
    input  logic [9:0]  f2i8_k,
    output logic [7:0]  f2i8_y,
    input  logic        f2ip_en,
    input  logic [31:0] f2ip_x,
    input  logic [9:0]  f2ip_k,
    output logic [16:0] f2ip_y,
    input  logic        f2i32_en,
    input  logic [31:0] f2i32_x,
    input  logic [9:0]  f2i32_k,
    output logic [31:0] f2i32_y,
    // es_fdiv
    input  logic        fdiv_start, fdiv_dbl,
    input  logic [63:0] fdiv_a, fdiv_b,
    output logic        fdiv_busy, fdiv_done,
    output logic [63:0] fdiv_y
);
    es_fadd #(.W(32)) u_fadd32 (.clk, .en(fadd32_en), .sub(fadd32_sub), .a(fadd32_a), .b(fadd32_b),
                                .y(fadd32_y));
    es_fadd #(.W(64)) u_fadd64 (.clk, .en(fadd64_en), .sub(fadd64_sub), .a(fadd64_a), .b(fadd64_b),
                                .y(fadd64_y));
    es_f2i #(.W(8), .LO(-128), .HI(127)) u_f2i8 (.clk, .en(f2i8_en), .x(f2i8_x), .k(f2i8_k), .y(f2i8_y));
    es_f2i #(.W(17), .LO(0), .HI(32768)) u_f2ip (.clk, .en(f2ip_en), .x(f2ip_x), .k(f2ip_k), .y(f2ip_y));
    es_f2i u_f2i32 (.clk, .en(f2i32_en), .x(f2i32_x), .k(f2i32_k), .y(f2i32_y));
    es_fdiv u_fdiv (.clk, .rst_n, .start(fdiv_start), .dbl(fdiv_dbl), .a(fdiv_a), .b(fdiv_b),
                    .busy(fdiv_busy), .done(fdiv_done), .y(fdiv_y));
endmodule
