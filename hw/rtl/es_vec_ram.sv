// Row buffer of the vector unit: N float32 elements in VL banks (element i in bank i mod VL, word
// i / VL). Port A reads or writes (lane mask `wm`: a row's last group), port B reads. A group of VL
// lanes starts at a multiple of VL (lane k: element idx + k, bank k); from any other index only lane 0
// holds an element (element idx; the other lanes are undefined). es_vec's VL-wide accesses are all
// aligned (rows from 0, RoPE's sin row at ceil(D/2 / VL) * VL, pass 2 by VL); the unaligned ones (RoPE's
// rotate-half partner at D/2 off VL, and the element walk of such a RoPE) stream one element a cycle
// on lane 0. So a bank's address is idx / VL whatever the lane and only lane 0 rotates: a full rotation
// of the lanes and an adder per bank cost ~1.3k LUT at VL = 4. Each bank has one read/write port and
// one read port, both reads registered and advancing with `en` (the pipeline's stall), so Yosys maps
// it to true dual-port block RAM (RAMB36E2: 1024 x 32 per block); lane 0's select uses the index
// registered with the read. A write and an A read never share a cycle in es_vec (a buffer is filled,
// then read).
module es_vec_ram #(
    parameter int VL = 1,              // 1, 2, 4 or 8
    parameter int N = 8192,            // elements, a multiple of VL
    parameter int AW = $clog2(N)
) (
    input  logic             clk,
    input  logic             en,
    input  logic             we,
    input  logic [VL-1:0]    wm,
    input  logic [AW-1:0]    a_idx,
    input  logic [32*VL-1:0] a_wdata,
    output logic [32*VL-1:0] a_rdata,
    input  logic [AW-1:0]    b_idx,
    output logic [32*VL-1:0] b_rdata
);
    localparam int LB = VL > 1 ? $clog2(VL) : 1;
    localparam int BA = VL > 1 ? AW - LB : AW;     // address bits of a bank
    logic [31:0] ra [VL];
    logic [31:0] rb [VL];
    wire [BA-1:0] wa = VL > 1 ? BA'(a_idx >> LB) : BA'(a_idx);
    wire [BA-1:0] wb = VL > 1 ? BA'(b_idx >> LB) : BA'(b_idx);
    for (genvar r = 0; r < VL; r++) begin : g_bank
        logic [31:0] mem [N / VL];
        // the bank's registered reads in registers of their own: written as ra[r] in the write's block,
        // Icarus 11 left port A's read X (the shell's VL = 1 decoder on Icarus); same netlist in Yosys
        logic [31:0] qa, qb;
        always_ff @(posedge clk) begin
            if (we && wm[r]) mem[wa] <= a_wdata[32 * r +: 32];
            else if (en) qa <= mem[wa];
        end
        always_ff @(posedge clk) begin
            if (en) qb <= mem[wb];
        end
        assign ra[r] = qa;
        assign rb[r] = qb;
    end
    if (VL == 1) begin : g_out1
        assign a_rdata = ra[0];
        assign b_rdata = rb[0];
    end else begin : g_lane0
        logic [LB-1:0] sa, sb;
        always_ff @(posedge clk) begin
            if (en) begin
                sa <= a_idx[LB-1:0];
                sb <= b_idx[LB-1:0];
            end
        end
        always_comb begin
            a_rdata[31:0] = ra[sa];
            b_rdata[31:0] = rb[sb];
            for (int k = 1; k < VL; k++) begin
                a_rdata[32 * k +: 32] = ra[k];
                b_rdata[32 * k +: 32] = rb[k];
            end
        end
    end
endmodule
