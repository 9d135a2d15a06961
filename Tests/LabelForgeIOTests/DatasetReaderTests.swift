import Foundation
import LabelForgeCore
import LabelForgeIO
import LabelForgeTesting
import Testing

@Suite struct DatasetReaderTests {
    @Test("JSONL rows stream in order and blank lines are skipped")
    func jsonl() throws {
        let ws = try TestWorkspace()
        let path = try ws.write("d.jsonl", "{\"a\":1}\n\n{\"a\":2}\r\n")
        let reader = try DatasetReader(path: path, format: .jsonl)
        #expect(try reader.next()?.fields["a"] == 1)
        let second = try #require(try reader.next())
        #expect(second.fields["a"] == 2)
        #expect(second.index == 1)
        #expect(second.line == 3)
        #expect(try reader.next() == nil)
    }

    @Test("a malformed JSONL line is an error naming the file and line")
    func malformed() throws {
        let ws = try TestWorkspace()
        let path = try ws.write("d.jsonl", "{\"a\":1}\n{\"a\":\n")
        let reader = try DatasetReader(path: path, format: .jsonl)
        _ = try reader.next()
        let error = #expect(throws: LabelForgeError.self) { try reader.next() }
        #expect(error?.message.hasPrefix("\(path):2:") == true)
    }

    @Test("CSV handles quotes, commas and newlines inside fields")
    func csv() throws {
        let ws = try TestWorkspace()
        let path = try ws.write("d.csv", "id,text\nr1,\"hello, \"\"world\"\"\"\nr2,\"two\nlines\"\nr3,plain\n")
        let reader = try DatasetReader(path: path, format: .csv)
        #expect(try reader.next()?.fields["text"] == "hello, \"world\"")
        let second = try #require(try reader.next())
        #expect(second.fields["text"] == "two\nlines")
        #expect(try reader.next()?.line == 5)
        #expect(try reader.next() == nil)
    }

    @Test("a CSV row with the wrong field count names its line")
    func csvFieldCount() throws {
        let ws = try TestWorkspace()
        let path = try ws.write("d.csv", "id,text\nr1,a,b\n")
        let reader = try DatasetReader(path: path, format: .csv)
        let error = #expect(throws: LabelForgeError.self) { try reader.next() }
        #expect(error?.message.contains("\(path):2") == true)
    }

    @Test("JSONLWriter writes canonical lines")
    func writer() throws {
        let ws = try TestWorkspace()
        let writer = try JSONLWriter(path: ws.path("out.jsonl"))
        try writer.append(["b": 1, "a": "x"])
        try writer.sync()
        #expect(try ws.read("out.jsonl") == "{\"a\":\"x\",\"b\":1}\n")
    }
}
