"""Model judges: a model shown a comparison's two outputs in both orders, asked which is better.

Plain Python, no Django (like ``evalhub.analysis``): ``pairwise`` renders the prompt, parses the
reply and combines the two orders; ``local`` scores with a model loaded through the trainer's
loading path (torch imported lazily). An HTTP judge talks to its OpenAI-compatible endpoint
through ``evalhub.chat_client``, the client that served generation uses too. The service
``evalhub.services.judging`` feeds them database rows and stores the verdicts.
"""
