import Foundation
import LabelForgeCore
import LabelForgeKernel

/// The starter project `labelforge init` writes: a config, a prompt pack with a few-shot sentiment
/// prompt, and 20 labeled reviews (from the demo's data), runnable at once on the local engine.
enum StarterProject {
    static let config = """
        # A starter LabelForge project: sentiment of product reviews on the embedded engine.
        #   labelforge run --config config.yaml
        # Paths are relative to this file's directory, so it runs from anywhere.
        run:
          name: starter
          seed: 1

        dataset:
          path: data/reviews.jsonl
          id_field: id

        engines:
          - name: local
            kind: local
            model:
              id: smollm2-135m-instruct-q4_1

        prompts:
          pack: prompts

        stages:
          - id: sentiment
            type: classify
            template: sentiment
            labels:
              - {name: positive, description: the reviewer is clearly pleased}
              - {name: negative, description: the reviewer is clearly unhappy}
              - {name: neutral, description: "mixed or flat, neither clearly pleased nor unhappy"}
            gold_field: sentiment

        """

    static let pack = """
        name: starter
        version: "1"
        description: A few-shot sentiment prompt for short product reviews.

        """

    /// Small models label better with worked examples (three lifted SmolLM2's sentiment accuracy on
    /// the demo's first 60 rows from 38% to 50%, as issue 15 reports); these three are not among the 20 rows.
    static let sentimentPrompt =
        "Classify the sentiment of a product review as positive, negative or neutral.\n{{#labels}}\n- {{name}}: {{description}}\n{{/labels}}\n\nThree worked examples:\n\nReview: Setting up the mechanical keyboard took less than five minutes. Very user-friendly design.\nAnswer: positive\n\nReview: Shipping was a mess: the blender was sent to the wrong address first. Really frustrating delivery experience.\nAnswer: negative\n\nReview: The phone case came on time, exactly as scheduled. Packaging was plain but adequate.\nAnswer: neutral\n\nReview: {{text}}\nAnswer:"

    static let rows = [
        "{\"id\":\"r0005\",\"text\":\"Delivery was quick and the laptop stand was packed carefully. The courier even left it in a safe spot.\",\"sentiment\":\"positive\"}",
        "{\"id\":\"r0016\",\"text\":\"The blender is clumsy to operate and the manual is useless. I dread using it.\",\"sentiment\":\"negative\"}",
        "{\"id\":\"r0002\",\"text\":\"Shipping for the phone case took about a week, as listed. Packaging was plain but adequate.\",\"sentiment\":\"neutral\"}",
        "{\"id\":\"r0008\",\"text\":\"The support team was friendly and fixed the problem with my pair of running shoes quickly. They were polite, patient, and genuinely helpful.\",\"sentiment\":\"positive\"}",
        "{\"id\":\"r0018\",\"text\":\"The buttons on the digital kitchen scale are hard to reach and easy to press by accident. Poorly thought-out design.\",\"sentiment\":\"negative\"}",
        "{\"id\":\"r0003\",\"text\":\"The cast iron skillet is a bit pricey, but not unreasonable for what it is. It's fair for the money.\",\"sentiment\":\"neutral\"}",
        "{\"id\":\"r0009\",\"text\":\"Only €25 for a backpack this good? That's a bargain, and it's half what I paid for my last one 🙌\",\"sentiment\":\"positive\"}",
        "{\"id\":\"r0020\",\"text\":\"The laptop stand broke after two weeks of light use. I would not trust it to last a season.\",\"sentiment\":\"negative\"}",
        "{\"id\":\"r0006\",\"text\":\"The support team helped with my hiking backpack eventually, though it took a few emails. The issue is partly resolved.\",\"sentiment\":\"neutral\"}",
        "{\"id\":\"r0010\",\"text\":\"Outstanding customer service: they walked me through fixing a fault with my bluetooth speaker step by step. I'll buy from them again because of how they treated me.\",\"sentiment\":\"positive\"}",
        "{\"id\":\"r0022\",\"text\":\"Delivery of the smartwatch kept getting pushed back, and tracking never updated. The packaging was torn open when it arrived.\",\"sentiment\":\"negative\"}",
        "{\"id\":\"r0007\",\"text\":\"At $35, the air fryer is fairly priced, neither a bargain nor a rip-off. Nothing special about the cost either way.\",\"sentiment\":\"neutral\"}",
        "{\"id\":\"r0013\",\"text\":\"The support team was friendly and fixed the problem with my phone case quickly. Customer service like this is rare.\",\"sentiment\":\"positive\"}",
        "{\"id\":\"r0027\",\"text\":\"Far too expensive for such a basic rice cooker. Poor value overall.\",\"sentiment\":\"negative\"}",
        "{\"id\":\"r0011\",\"text\":\"The coffee grinder is holding up fine so far, but it's only been a few weeks. Not great, not terrible.\",\"sentiment\":\"neutral\"}",
        "{\"id\":\"r0014\",\"text\":\"Excellent craftsmanship on the yoga mat; every edge and joint is clean. No scratches, no rattles, nothing loose.\",\"sentiment\":\"positive\"}",
        "{\"id\":\"r0031\",\"text\":\"Terrible quality: the water bottle arrived with loose parts and wore out right away. Avoid this one.\",\"sentiment\":\"negative\"}",
        "{\"id\":\"r0015\",\"text\":\"The laptop stand arrived one day late, but the box was intact. Tracking worked.\",\"sentiment\":\"neutral\"}",
        "{\"id\":\"r0023\",\"text\":\"The phone case arrived two days earlier than promised. Couldn't have asked for better shipping. Express delivery was free on orders over $99, which was a nice bonus.\",\"sentiment\":\"positive\"}",
        "{\"id\":\"r0033\",\"text\":\"The cast iron skillet broke after two weeks of light use. Avoid this one.\",\"sentiment\":\"negative\"}",
    ]

    static let readme = """
        # Starter project

        - `config.yaml`: one classify stage over `data/reviews.jsonl`, scored against its `sentiment` column.
        - `prompts/`: the prompt pack (`sentiment.mustache`, a few-shot prompt).
        - Run: `labelforge run --config config.yaml`; then `labelforge inspect runs/<id>`.

        """

    /// The files, by path relative to the project directory.
    static var files: [(path: String, contents: String)] {
        [
            ("config.yaml", config), ("prompts/pack.yaml", pack),
            ("prompts/sentiment.mustache", sentimentPrompt + "\n"),
            ("data/reviews.jsonl", rows.joined(separator: "\n") + "\n"), ("README.md", readme),
        ]
    }
}
