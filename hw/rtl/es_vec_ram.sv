// Row buffer of the vector unit: one read/write port (A) and one read port (B), both reads
// registered and advancing with `en` (the pipeline's stall), so Yosys maps it to true dual-port
// block RAM (RAMB36E2: 1024 x 32 per block). A write and an A read never share a cycle in es_vec
// (a buffer is filled, then read).
module es_vec_ram #(
    parameter int W = 32,
    parameter int N = 8192,
    parameter int AW = $clog2(N)
) (
    input  logic          clk,
    input  logic          en,
    input  logic          we,
    input  logic [AW-1:0] a_addr,
    input  logic [W-1:0]  a_wdata,
    output logic [W-1:0]  a_rdata,
    input  logic [AW-1:0] b_addr,
    output logic [W-1:0]  b_rdata
);
    logic [W-1:0] mem [N];
    always_ff @(posedge clk) begin
        if (we) mem[a_addr] <= a_wdata;
        else if (en) a_rdata <= mem[a_addr];
    end
    always_ff @(posedge clk) begin
        if (en) b_rdata <= mem[b_addr];
    end
endmodule
