// Attention unit: an N-cycle delay line (N >= 1) that carries side data beside a fixed-latency
// floating-point pipeline (the attention datapaths never stall: no enable).
module es_attn_dly #(
    parameter int W = 1,
    parameter int N = 1
) (
    input  logic         clk,
    input  logic [W-1:0] d,
    output logic [W-1:0] q
);
    logic [W-1:0] r [N];
    always_ff @(posedge clk) begin
        r[0] <= d;
        for (int i = 1; i < N; i++) r[i] <= r[i - 1];
    end
    assign q = r[N-1];
endmodule
