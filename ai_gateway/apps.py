from django.apps import AppConfig


class AIGatewayConfig(AppConfig):
    name = "ai_gateway"
    verbose_name = "AI gateway"
