import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// The bodies both mocks answer with: a JSON message and its SSE event stream (ANTHROPIC-WIRE.md), each with
/// `usage`, and errors in Anthropic's shape.
public enum MockClaudeBodies {
    public static let messageID = "msg_mock_0001"

    public static let messageJSON = #"""
        {"id":"msg_mock_0001","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"Hello from the mock."}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":12,"output_tokens":6,"cache_creation_input_tokens":0,"cache_read_input_tokens":0}}
        """#

    public static let modelsJSON = #"{"data":[{"id":"claude-sonnet-4-5","type":"model"}],"has_more":false}"#

    public static let countTokensJSON = #"{"input_tokens":12}"#

    static func event(_ name: String, _ data: String) -> String { "event: \(name)\ndata: \(data)\n\n" }

    static let streamOpening = [
        event(
            "message_start",
            #"{"type":"message_start","message":{"id":"msg_mock_0001","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[],"stop_reason":null,"usage":{"input_tokens":12,"output_tokens":1,"cache_creation_input_tokens":0,"cache_read_input_tokens":0}}}"#
        ),
        event(
            "content_block_start",
            #"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#),
        event("ping", #"{"type":"ping"}"#),
    ]

    static func textDelta(_ text: String) -> String {
        event(
            "content_block_delta",
            #"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"\#(text)"}}"#)
    }

    static func streamClosing(outputTokens: Int) -> [String] {
        [
            event("content_block_stop", #"{"type":"content_block_stop","index":0}"#),
            event(
                "message_delta",
                #"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":\#(outputTokens)}}"#
            ),
            event("message_stop", #"{"type":"message_stop"}"#),
        ]
    }

    /// message_start, content_block_start, ping, 5 text deltas, content_block_stop, message_delta, message_stop.
    public static let sseEvents: [String] =
        streamOpening + ["Hello", " from", " the", " mock", "."].map(textDelta) + streamClosing(outputTokens: 6)

    /// A stream of `deltas` one-word deltas (sent 100 ms apart by the `long-stream` fault).
    public static func longStreamEvents(deltas: Int) -> [String] {
        streamOpening + (0..<deltas).map { textDelta(" word\($0)") } + streamClosing(outputTokens: deltas)
    }

    static func json(_ status: Int, _ text: String, headers: HTTPFields = [:]) -> Response {
        var fields = headers
        fields[.contentType] = "application/json"
        fields[HTTPField.Name("request-id")!] = "req_mock"
        return Response(status: .init(code: status), headers: fields, body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    static func error(_ status: Int, _ type: String, _ message: String, headers: HTTPFields = [:]) -> Response {
        json(
            status, #"{"type":"error","error":{"type":"\#(type)","message":"\#(message)"},"request_id":"req_mock"}"#,
            headers: headers)
    }
}
