// AXI4 read master (one stream): a command (start address, beat count) becomes INCR bursts of up to
// BURST beats that never cross a 4 KiB boundary, with up to OUTST bursts in flight. A burst is only
// requested when the data FIFO has room for every beat in flight plus this burst, so R is never
// back-pressured (rready = 1) and the multiplexer in front can route R by ID without blocking.
// abort: stop requesting, drop buffered and arriving data; `busy` falls once nothing is in flight.
// An R beat with RRESP != OKAY sets `err` (sticky until the next command) and is dropped.
module es_axi_rd #(
    parameter int AW = 40,
    parameter int DW = 128,
    parameter int BURST = 16,     // beats per burst, BURST * DW/8 divides 4096
    parameter int OUTST = 8,      // bursts in flight
    parameter int FIFO = 256,     // data FIFO depth in beats (power of two, >= BURST)
    // derived: do not override
    parameter int FAW = $clog2(FIFO),
    parameter int OW = $clog2(OUTST + 1),
    parameter int SB = $clog2(DW / 8)
) (
    input  logic          clk,
    input  logic          rst_n,
    // a C++ word: only a module linted or built as the top would name a model member after it
    // verilator lint_off SYMRSVDWORD
    input  logic          abort,
    // verilator lint_on SYMRSVDWORD
    // command
    input  logic          cmd_valid,
    output logic          cmd_ready,
    input  logic [AW-1:0] cmd_addr,
    input  logic [31:0]   cmd_beats,
    // address request (to the ID multiplexer)
    output logic          ar_valid,
    input  logic          ar_ready,
    output logic [AW-1:0] ar_addr,
    output logic [7:0]    ar_len,
    // read data routed to this master
    input  logic          r_valid,
    output logic          r_ready,
    input  logic [DW-1:0] r_data,
    input  logic [1:0]    r_resp,
    input  logic          r_last,
    // data out
    output logic          out_valid,
    input  logic          out_ready,
    output logic [DW-1:0] out_data,
    // status
    output logic          busy,
    output logic          err,
    output logic [1:0]    err_resp
);
    logic          active;
    logic [AW-1:0] cur;
    logic [31:0]   rem;
    logic [FAW:0]  inflight;    // beats requested and not yet received
    logic [OW-1:0] outst;       // bursts requested (ar_valid or accepted) and not yet complete
    logic [FAW:0]  fcount;
    logic          f_in_ready;

    // The next burst's length min(BURST, beats to the next 4 KiB boundary, rem) is a register (blen)
    // with the beats to the boundary (to4k), both set with cur/rem from their next values: a burst
    // never crosses the boundary, so after one to4k drops by its length (a whole 4 KiB page once it
    // reaches 0). Computed from cur and rem in the cycle of use, the length sat in front of the address
    // add, the FIFO-room compare and the issue decision (11 LUT levels); now its own path.
    localparam int PB = 4096 >> SB;  // beats in 4 KiB
    logic [8:0]    blen;
    logic [12-SB:0] to4k;            // 1..PB
    function automatic [8:0] len_of(input [12-SB:0] t4, input [31:0] r);
        len_of = 9'(BURST);
        if (32'(t4) < 32'(len_of)) len_of = 9'(t4);
        if (r < 32'(len_of)) len_of = r[8:0];
    endfunction
    wire [12:0]     a4k = 13'd4096 - {1'b0, cmd_addr[11:0]};
    wire [12-SB:0]  cmd_to4k = a4k[12:SB];
    wire [12-SB:0]  nxt_to4k = to4k == (13 - SB)'(blen) ? (13 - SB)'(PB) : to4k - (13 - SB)'(blen);
    wire [31:0]     nxt_rem = rem - 32'(blen);

    wire room = 32'(inflight) + 32'(fcount) + 32'(blen) <= 32'(FIFO);
    wire issue = active && !abort && rem != 32'd0 && (!ar_valid || ar_ready) && room && outst < OW'(OUTST);
    wire ar_fire = ar_valid && ar_ready;
    wire r_fire = r_valid && r_ready;
    wire r_done = r_fire && r_last;

    assign cmd_ready = !active && !abort;
    assign r_ready = 1'b1;

    always_ff @(posedge clk) begin
        if (!rst_n) begin
            active <= 1'b0;
            ar_valid <= 1'b0;
            inflight <= '0;
            outst <= '0;
            err <= 1'b0;
            err_resp <= 2'b00;
            rem <= '0;
            blen <= '0;
        end else begin
            if (cmd_valid && cmd_ready) begin
                active <= cmd_beats != 32'd0;
                cur <= cmd_addr;
                rem <= cmd_beats;
                to4k <= cmd_to4k;
                blen <= len_of(cmd_to4k, cmd_beats);
                err <= 1'b0;
                err_resp <= 2'b00;
            end else if (abort) begin
                active <= 1'b0;
                rem <= '0;
                blen <= '0;
                err <= 1'b0;
                err_resp <= 2'b00;
            end else if (active && rem == 32'd0) begin
                active <= 1'b0;
            end

            if (issue) begin
                ar_valid <= 1'b1;
                ar_addr <= cur;
                ar_len <= 8'(blen - 9'd1);
                cur <= cur + (AW'(blen) << SB);
                rem <= nxt_rem;
                to4k <= nxt_to4k;
                blen <= len_of(nxt_to4k, nxt_rem);
            end else if (ar_fire) begin
                ar_valid <= 1'b0;
            end

            inflight <= inflight + (issue ? (FAW + 1)'(blen) : '0) - ((FAW + 1)'(r_fire));
            outst <= outst + OW'(issue) - OW'(r_done);

            if (r_fire && r_resp != 2'b00 && !err && !abort) begin
                err <= 1'b1;
                err_resp <= r_resp;
            end
        end
    end

    // data FIFO: held in reset while aborting (drops its contents and arriving beats)
    tlmm_fifo #(.W(DW), .DEPTH(FIFO)) u_fifo (
        .clk, .rst_n(rst_n && !abort),
        .in_valid(r_fire && r_resp == 2'b00), .in_ready(f_in_ready), .in_data(r_data),
        .out_valid, .out_ready, .out_data, .count(fcount)
    );

    assign busy = active || ar_valid || outst != '0 || fcount != '0;

    wire unused = &{1'b0, f_in_ready, a4k[SB-1:0]};
endmodule
