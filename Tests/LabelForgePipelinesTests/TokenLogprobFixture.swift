import LabelForgeLLM

enum TokenLogprobFixture {
    static func make(_ token: String, _ logprob: Double, _ top: [(String, Double)]) -> TokenLogprob {
        TokenLogprob(token: token, logprob: logprob, top: top.map { (token: $0.0, logprob: $0.1) })
    }
}
