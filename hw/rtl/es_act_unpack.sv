// Activation unpacker: bus beats of DW/64 eight-byte group slots (a group's G int8 in bytes 0..G-1 of
// its slot) become engine beats of one group. Each token starts on a beat boundary: after the last
// group of a token the rest of the beat is skipped. `groups` (groups per token) is held stable by
// the sequencer for the whole command; `clear` restarts at the first slot.
module es_act_unpack #(
    parameter int DW = 128,
    parameter int G = 5,
    parameter int AW8 = 8,
    parameter int SPB = DW / 64,              // slots per beat
    parameter int HW = (SPB > 1) ? $clog2(SPB) : 1
) (
    input  logic            clk,
    input  logic            rst_n,
    input  logic            clear,
    input  logic [15:0]     groups,
    input  logic            in_valid,
    output logic            in_ready,
    input  logic [DW-1:0]   in_data,
    output logic            out_valid,
    input  logic            out_ready,
    output logic [G*AW8-1:0] out_data
);
    logic [15:0]   gi;
    logic [HW-1:0] h;

    wire out_fire = out_valid && out_ready;
    wire tok_end = gi == groups - 16'd1;
    wire beat_end = tok_end || (h == HW'(SPB - 1));

    assign out_valid = in_valid;
    assign out_data = in_data[64 * h +: G * AW8];
    assign in_ready = out_ready && beat_end;

    always_ff @(posedge clk) begin
        if (!rst_n || clear) begin
            gi <= '0;
            h <= '0;
        end else if (out_fire) begin
            gi <= tok_end ? 16'd0 : gi + 16'd1;
            h <= beat_end ? '0 : h + 1'b1;
        end
    end
endmodule
