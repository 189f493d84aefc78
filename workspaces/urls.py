# The landing page ("home") shows each workspace's key and credits, so it lives in
# ai_gateway (ai_gateway.home_views), above the apps it reads.
urlpatterns: list = []
