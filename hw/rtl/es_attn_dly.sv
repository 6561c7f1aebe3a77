// Attention unit: an N-cycle delay line (N >= 1) that carries side data beside a fixed-latency
// floating-point pipeline (it shifts every cycle: the pipelines it runs beside advance every cycle
// while anything is in them). One flat shift register (an unpacked array shifted in a loop is
// mis-simulated by Icarus 11).
module es_attn_dly #(
    parameter int W = 1,
    parameter int N = 1
) (
    input  logic         clk,
    input  logic [W-1:0] d,
    output logic [W-1:0] q
);
    logic [W*N-1:0] r;
    if (N == 1) begin : g_one
        always_ff @(posedge clk) r <= d;
    end else begin : g_many
        always_ff @(posedge clk) r <= {r[W*(N-1)-1:0], d};
    end
    assign q = r[W*N-1 -: W];
endmodule
