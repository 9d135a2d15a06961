import AsyncHTTPClient
import Crypto
import Foundation
import LabelForgeCore
import NIOCore
import NIOHTTP1
import Synchronization

/// Where a bucket lives and how to sign for it.
public struct S3Location: Sendable, Equatable {
    public var bucket: String
    /// Object names start with `prefix/` (no leading or trailing slash; empty for none).
    public var prefix: String
    /// `http(s)://host[:port]`, e.g. a SeaweedFS or MinIO server; AWS's regional endpoint by default.
    public var endpoint: String
    public var region: String
    /// The `~/.aws/credentials` profile; `AWS_PROFILE` or `default` when nil.
    public var profile: String?

    public init(
        bucket: String, prefix: String = "", endpoint: String? = nil, region: String? = nil, profile: String? = nil,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) {
        self.bucket = bucket
        self.prefix = prefix.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        let region = region ?? environment["AWS_REGION"] ?? environment["AWS_DEFAULT_REGION"] ?? "us-east-1"
        self.region = region
        var endpoint =
            endpoint ?? environment["AWS_ENDPOINT_URL_S3"] ?? environment["AWS_ENDPOINT_URL"]
            ?? "https://s3.\(region).amazonaws.com"
        while endpoint.hasSuffix("/") { endpoint.removeLast() }
        self.endpoint = endpoint
        self.profile = profile
    }

    /// `s3://bucket/prefix at endpoint`, for messages.
    public var description: String { "s3://\(bucket)/\(prefix) at \(endpoint)" }
}

/// AWS credentials, from the standard environment variables or a shared credentials file.
/// Never logged, never written: only `source` appears in messages.
public struct S3Credentials: Sendable {
    public var accessKeyID: String
    public var secretAccessKey: String
    public var sessionToken: String?
    /// Where they came from (`AWS_ACCESS_KEY_ID`, or `profile p in ~/.aws/credentials`).
    public var source: String

    public init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil, source: String) {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
        self.source = source
    }

    /// The credentials the AWS CLI would use: `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`
    /// (`AWS_SESSION_TOKEN`), else the profile (`profile`, `AWS_PROFILE`, or `default`) of
    /// `AWS_SHARED_CREDENTIALS_FILE` or `~/.aws/credentials`.
    /// - Throws: `LabelForgeError.cache` saying where it looked.
    public static func resolve(profile: String?, environment: [String: String]) throws -> S3Credentials {
        if profile == nil, let key = environment["AWS_ACCESS_KEY_ID"], !key.isEmpty,
            let secret = environment["AWS_SECRET_ACCESS_KEY"], !secret.isEmpty
        {
            return S3Credentials(
                accessKeyID: key, secretAccessKey: secret, sessionToken: environment["AWS_SESSION_TOKEN"],
                source: "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY")
        }
        let name = profile ?? environment["AWS_PROFILE"] ?? "default"
        let home = environment["HOME"] ?? NSHomeDirectory()
        let file = environment["AWS_SHARED_CREDENTIALS_FILE"] ?? home + "/.aws/credentials"
        if let text = try? String(contentsOfFile: file, encoding: .utf8), let values = ini(text)[name],
            let key = values["aws_access_key_id"], let secret = values["aws_secret_access_key"]
        {
            return S3Credentials(
                accessKeyID: key, secretAccessKey: secret, sessionToken: values["aws_session_token"],
                source: "profile '\(name)' in \(file)")
        }
        throw LabelForgeError(
            .cache,
            "No S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or add profile '\(name)' with "
                + "aws_access_key_id and aws_secret_access_key to \(file).")
    }

    /// Sections of an INI file: `[name]` then `key = value` lines; `#` and `;` start comments.
    static func ini(_ text: String) -> [String: [String: String]] {
        var sections: [String: [String: String]] = [:]
        var current: String?
        for raw in text.split(whereSeparator: \.isNewline) {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("["), line.hasSuffix("]") {
                var name = String(line.dropFirst().dropLast()).trimmingCharacters(in: .whitespaces)
                if name.hasPrefix("profile ") { name = String(name.dropFirst(8)).trimmingCharacters(in: .whitespaces) }
                current = name
                continue
            }
            guard let current, let equals = line.firstIndex(of: "=") else { continue }
            let key = line[..<equals].trimmingCharacters(in: .whitespaces).lowercased()
            let value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            sections[current, default: [:]][key] = value
        }
        return sections
    }
}

/// AWS Signature Version 4 for S3 (`Authorization` header, signed payload hash).
public struct S3Signer: Sendable {
    public var credentials: S3Credentials
    public var region: String
    public var service = "s3"

    public init(credentials: S3Credentials, region: String) {
        self.credentials = credentials
        self.region = region
    }

    /// The headers to add to a request: `x-amz-date`, `x-amz-content-sha256`, the session token
    /// if any, and `Authorization`. `headers` are signed too (names lowercased); `host` must be in it.
    public func sign(
        method: String, path: String, query: [(String, String)], headers: [String: String], payloadHash: String,
        date: Date
    ) -> [String: String] {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        let amzDate = formatter.string(from: date)
        let day = String(amzDate.prefix(8))
        var signed: [String: String] = [:]
        for (name, value) in headers { signed[name.lowercased()] = value.trimmingCharacters(in: .whitespaces) }
        signed["x-amz-date"] = amzDate
        signed["x-amz-content-sha256"] = payloadHash
        if let token = credentials.sessionToken { signed["x-amz-security-token"] = token }
        let names = signed.keys.sorted()
        let encodedQuery: [(name: String, value: String)] = query.map {
            (Self.encode($0.0, slash: true), Self.encode($0.1, slash: true))
        }
        let sortedQuery = encodedQuery.sorted { $0.name == $1.name ? $0.value < $1.value : $0.name < $1.name }
        let canonicalQuery: String = sortedQuery.map { $0.name + "=" + $0.value }.joined(separator: "&")
        let canonicalHeaders: String = names.map { $0 + ":" + signed[$0]! + "\n" }.joined()
        let canonicalRequest: String = [
            method, Self.encode(path, slash: false), canonicalQuery, canonicalHeaders, names.joined(separator: ";"),
            payloadHash,
        ].joined(separator: "\n")
        let scope = "\(day)/\(region)/\(service)/aws4_request"
        let stringToSign = [
            "AWS4-HMAC-SHA256", amzDate, scope, Self.hex(SHA256.hash(data: Data(canonicalRequest.utf8))),
        ].joined(separator: "\n")
        var key = SymmetricKey(data: Data(("AWS4" + credentials.secretAccessKey).utf8))
        for part in [day, region, service, "aws4_request"] {
            key = SymmetricKey(data: Data(HMAC<SHA256>.authenticationCode(for: Data(part.utf8), using: key)))
        }
        let signature = Self.hex(HMAC<SHA256>.authenticationCode(for: Data(stringToSign.utf8), using: key))
        var result = signed
        result.removeValue(forKey: "host")
        for name in headers.keys { result.removeValue(forKey: name.lowercased()) }
        result["authorization"] =
            "AWS4-HMAC-SHA256 Credential=\(credentials.accessKeyID)/\(scope), SignedHeaders=\(names.joined(separator: ";")), Signature=\(signature)"
        return result
    }

    /// RFC 3986 percent-encoding as SigV4 wants it: unreserved characters stay, `/` stays in paths.
    static func encode(_ text: String, slash: Bool) -> String {
        var out = ""
        for byte in text.utf8 {
            let c = Character(Unicode.Scalar(byte))
            if c.isASCII && (c.isLetter || c.isNumber || "-._~".contains(c)) || (!slash && c == "/") {
                out.append(c)
            } else {
                out += String(format: "%%%02X", byte)
            }
        }
        return out
    }

    static func hex(_ digest: some Sequence<UInt8>) -> String {
        digest.map { String(format: "%02x", $0) }.joined()
    }

    /// SHA-256 of a payload, as `x-amz-content-sha256` wants it.
    public static func payloadHash(_ data: Data) -> String { hex(SHA256.hash(data: data)) }
}

/// The few S3 calls the cache makes, signed, with retries on connection errors, 5xx and 429.
final class S3Client: Sendable {
    let location: S3Location
    private let signer: S3Signer
    /// One client for every S3 cache of the process, never shut down (so a cache can be dropped
    /// anywhere). A server that is down fails the connect within 2 s into our own retries.
    private static let sharedHTTP: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.timeout.connect = .seconds(2)
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 32
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()
    private var http: HTTPClient { Self.sharedHTTP }
    private let attempts: Int
    /// The last time every attempt of a call failed, and why: for `downFor` after it, calls fail at
    /// once instead of each waiting out its own attempts (a run's rows fail fast, not one by one).
    private let down = Mutex<(at: ContinuousClock.Instant, error: LabelForgeError)?>(nil)
    let downFor: Duration = .seconds(10)
    /// HTTP requests sent so far, retries included.
    private let sent = Mutex(0)
    var requestsSent: Int { sent.withLock { $0 } }

    /// What an S3 call answered.
    struct Reply {
        var status: Int
        var body: Data
    }

    init(location: S3Location, credentials: S3Credentials, attempts: Int = 4) {
        self.location = location
        self.signer = S3Signer(credentials: credentials, region: location.region)
        self.attempts = attempts
    }

    /// The URL path of an object (path-style: `/bucket/key`), and the host to sign.
    private func target(_ key: String?) -> (host: String, path: String) {
        let host = location.endpoint.components(separatedBy: "://").last ?? location.endpoint
        return (host, "/" + location.bucket + (key.map { "/" + $0 } ?? ""))
    }

    /// One call, retried on connection errors, timeouts, 5xx and 429 (0.25 s, 0.5 s, 1 s, …).
    /// - Throws: `LabelForgeError.cache` once the attempts run out.
    func call(
        _ method: HTTPMethod, key: String?, query: [(String, String)] = [], body: Data? = nil,
        headers extra: [String: String] = [:]
    ) async throws -> Reply {
        if let (at, error) = down.withLock({ $0 }), ContinuousClock.now - at < downFor { throw error }
        let (host, path) = target(key)
        let payload = body ?? Data()
        let payloadHash = S3Signer.payloadHash(payload)
        var lastError = ""
        for attempt in 0..<attempts {
            if attempt > 0 { try await Task.sleep(for: .milliseconds(250 << (attempt - 1))) }
            var headers = ["host": host]
            let signed = signer.sign(
                method: method.rawValue, path: path, query: query, headers: headers, payloadHash: payloadHash,
                date: Date())
            headers.removeValue(forKey: "host")
            var queryString = query.map {
                S3Signer.encode($0.0, slash: true) + "=" + S3Signer.encode($0.1, slash: true)
            }
            .joined(separator: "&")
            if !queryString.isEmpty { queryString = "?" + queryString }
            var request = HTTPClientRequest(url: location.endpoint + S3Signer.encode(path, slash: false) + queryString)
            request.method = method
            for (name, value) in signed { request.headers.add(name: name, value: value) }
            for (name, value) in extra { request.headers.add(name: name, value: value) }
            if let body {
                request.body = .bytes(ByteBuffer(bytes: body))
                request.headers.add(name: "content-length", value: String(body.count))
            }
            do {
                sent.withLock { $0 += 1 }
                let response = try await http.execute(request, timeout: .seconds(60))
                let bytes = try await response.body.collect(upTo: 256 << 20)
                let reply = Reply(status: Int(response.status.code), body: Data(bytes.readableBytesView))
                down.withLock { $0 = nil }
                if reply.status >= 500 || reply.status == 429 {
                    lastError = "HTTP \(reply.status)" + Self.errorDetail(reply.body)
                    continue
                }
                return reply
            } catch let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout {
                lastError = "no answer in time"
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                lastError = "\(error)"
            }
        }
        let error = LabelForgeError(
            .cache,
            "The S3 cache \(location.description) did not answer \(method.rawValue) after \(attempts) attempts "
                + "(\(lastError)). Check that the server is up and the endpoint is right; what finished is recorded: "
                + "once it is back, run the failed rows again with `labelforge run --resume <run> --retry-failed`.")
        down.withLock { $0 = (ContinuousClock.now, error) }
        throw error
    }

    /// ` (Code: Message)` from an S3 XML error body, or empty.
    static func errorDetail(_ body: Data) -> String {
        let text = String(decoding: body, as: UTF8.self)
        guard let code = element("Code", in: text) else { return "" }
        return " (\(code)" + (element("Message", in: text).map { ": \($0)" } ?? "") + ")"
    }

    /// The text of the first `<name>…</name>` in `xml`, unescaped.
    static func element(_ name: String, in xml: String) -> String? {
        elements(name, in: xml).first
    }

    static func elements(_ name: String, in xml: String) -> [String] {
        var found: [String] = []
        var rest = xml[...]
        while let open = rest.range(of: "<\(name)>"),
            let close = rest.range(of: "</\(name)>", range: open.upperBound..<rest.endIndex)
        {
            found.append(
                String(rest[open.upperBound..<close.lowerBound]).replacingOccurrences(of: "&lt;", with: "<")
                    .replacingOccurrences(of: "&gt;", with: ">").replacingOccurrences(of: "&quot;", with: "\"")
                    .replacingOccurrences(of: "&apos;", with: "'").replacingOccurrences(of: "&amp;", with: "&"))
            rest = rest[close.upperBound...]
        }
        return found
    }
}
