import HTTPTypes
import Hummingbird

/// Errors on `/v1/*` in Anthropic's shape: `{"type":"error","error":{"type":…,"message":…},"request_id":…}`.
enum AnthropicError {
    static func response(_ status: Int, _ type: String, _ message: String, requestID: String, headers: HTTPFields = [:])
        -> Response
    {
        let body = body(type, message, requestID: requestID)
        var fields = headers
        fields[.contentType] = "application/json"
        fields[HTTPField.Name("request-id")!] = requestID
        return Response(status: .init(code: status), headers: fields, body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    static func body(_ type: String, _ message: String, requestID: String) -> String {
        #"{"type":"error","error":{"type":"\#(type)","message":"\#(escape(message))"},"request_id":"\#(escape(requestID))"}"#
    }

    static func escape(_ text: String) -> String {
        var escaped = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": escaped += "\\\""
            case "\\": escaped += "\\\\"
            case "\n": escaped += "\\n"
            default: escaped.unicodeScalars.append(scalar.value < 0x20 ? " " : scalar)
            }
        }
        return escaped
    }
}
