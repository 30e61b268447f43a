"""Captions for measuring language ID across letter case: English alt text of the kinds real
pages carry (news photos and headlines, products, people and places, recipes, travel, sport,
real estate, how-to), and foreign captions of the same kinds in the languages a case fold
risks keeping as English (German, French, Spanish, Dutch, Italian, Portuguese, Swedish,
Danish, Polish, Czech, Indonesian, Turkish). Written for this check; each line is one caption."""

ENGLISH = """
Mercury News Letters to the Editor for Jan. 20, 2023
BREAKING: BENUE GUBER APPEAL MOVED TO ABUJA
A firefighter sprays water on a burning house in Paradise, California
President Biden speaks during a news conference at the White House
Children play in the snow at Central Park after the first storm of the season
The new stadium under construction in downtown Las Vegas
Protesters gather outside the courthouse on Tuesday morning
Police officers stand guard near the scene of the shooting
Flooded streets in Houston after Hurricane Harvey made landfall
A man walks his dog along the beach at sunset
Stainless steel kitchen sink with pull down faucet
Men's waterproof hiking boots, brown leather, size 10
Organic cotton baby blanket with elephant print
Wireless noise cancelling headphones in matte black
Vintage wooden coffee table with two drawers
Handmade ceramic mug with blue glaze
Apple iPhone 14 Pro Max 256GB Deep Purple
Samsung Galaxy S23 Ultra phone case with kickstand
LEGO Star Wars Millennium Falcon building kit
Queen size memory foam mattress topper
Chocolate chip cookies cooling on a wire rack
Grilled salmon with lemon and fresh dill
Homemade pepperoni pizza straight out of the oven
A bowl of creamy tomato soup with basil
Slow cooker beef stew with carrots and potatoes
Fresh strawberries in a white bowl on a wooden table
The living room features hardwood floors and a stone fireplace
Spacious master bedroom with walk-in closet
Backyard patio with a fire pit and string lights
Three bedroom ranch home for sale in Austin, Texas
Aerial view of the city skyline at night
The Golden Gate Bridge shrouded in fog
Tourists visit the Eiffel Tower in Paris
Snow covered mountains in Yellowstone National Park
Hikers on a trail in the Grand Canyon
A lighthouse on the rocky coast of Maine
Lebron James dunks during the fourth quarter against the Celtics
Manchester United players celebrate after scoring a goal
Serena Williams returns a serve at the US Open
The quarterback throws a pass during the first half
Runners cross the finish line at the Boston Marathon
Students walk across campus on the first day of classes
Teacher reading a book to a group of young children
Doctor talking with a patient in a hospital room
Nurses wearing masks at a vaccination clinic
Volunteers pack food boxes at the local food bank
How to change a flat tire in five easy steps
Step by step guide to planting tomatoes in your garden
Woman working on a laptop in a coffee shop
Business people shaking hands in a modern office
Close up of a honey bee on a yellow flower
Portrait of a golden retriever puppy lying on the grass
Two cats sleeping on a couch
A red fox in the snow
Bald eagle perched on a tree branch
Elephants walking across the savanna at dusk
Wedding couple dancing under the stars
Bride and groom with their families after the ceremony
Graduates throw their caps in the air
Family photo at the Thanksgiving dinner table
Old black and white photo of the main street in 1920
Map of the United States showing election results by county
Chart showing the rise in home prices since 2010
Screenshot of the new settings menu in Windows 11
Cover of the book The Great Gatsby
Poster for the movie Top Gun Maverick
Taylor Swift performs on stage during the Eras Tour
Actor Tom Hanks at the premiere in Los Angeles
Author signing copies of her new novel at the bookstore
Mayor announces new housing plan at city hall
Workers repair a water main break on Oak Street
Traffic backed up on Interstate 95 after a crash
A plane takes off from Chicago O'Hare International Airport
Electric cars charging at a station in a parking lot
Solar panels on the roof of a suburban house
Wind turbines on a hill at sunrise
Farmer harvesting corn with a combine
Cows grazing in a green pasture
Fishing boats in the harbour at dawn
The morning ferry leaving the pier
Christmas tree with lights and ornaments in the window
Jack o lanterns on a porch for Halloween
Fireworks over the river on the Fourth of July
Easter eggs in a basket on the lawn
Our team at the annual company picnic
Meet our staff
Customer reviews for the blue denim jacket
Free shipping on orders over fifty dollars
Sign up for our weekly newsletter
Download the app on the App Store
Click to enlarge the floor plan
Watch the full video of the interview
Read more about our history
Contact us for a free quote
Best hiking trails near Seattle
Top ten things to do in New York City this weekend
Why you should never skip breakfast
The best laptops for students in 2024
Lake Tahoe cabin with mountain views
Downtown Chicago apartment with a rooftop pool
Scientists study coral reefs off the coast of Australia
Astronauts aboard the International Space Station
The James Webb telescope captures a distant galaxy
Microscope image of a cancer cell
Volcano erupting on the Big Island of Hawaii
Rescue workers search through rubble after the earthquake
Smoke from wildfires covers the Bay Area
Supreme Court justices pose for their official photo
Senator speaks to reporters on Capitol Hill
Governor signs the budget bill into law
Voters wait in line at a polling station
Soldiers board a transport plane at the air base
Navy ship docked at Pearl Harbor
Men's basketball team poses with the championship trophy
High school band marching in the homecoming parade
Little league players shake hands after the game
Kids building a sandcastle on the beach
Grandmother baking bread with her granddaughter
Young woman jogging in the park in the morning
Yoga class on the beach at sunrise
Fresh vegetables at the farmers market
Street food vendors in Bangkok
Coffee beans being roasted
A glass of red wine next to a plate of cheese
Craft beer taps at the brewery
Birthday cake with candles
Bathroom remodel with white subway tile
Front porch with rocking chairs
Garden shed painted light green
Used 2018 Honda Civic for sale, low mileage
Ford F-150 pickup truck parked in the driveway
Classic red convertible at a car show
Mountain bike leaning against a tree
Kayaks on the shore of a calm lake
Camping tent under the milky way
Cruise ship sailing into port
Train station platform during rush hour
City bus on a rainy street
New York Yankees vs Boston Red Sox
Breaking news: storm knocks out power to thousands
Local man wins state lottery jackpot
Police arrest suspect in downtown robbery
School board meeting on Monday night
Weather forecast: sunny and warm this weekend
Stock market ends the week higher
Gas prices rise ahead of the holiday weekend
Company reports record profits in third quarter
New restaurant opens on Main Street
Museum unveils new dinosaur exhibit
Library hosts summer reading program for kids
Community garden volunteers plant flowers
Firefighters rescue a kitten from a storm drain
Bridge closed for repairs until next month
Hospital opens new cancer treatment center
University announces new president
Church celebrates its hundredth anniversary
Historic building to be torn down
City council approves new bike lanes
""".strip().splitlines()

FOREIGN = """
Die Feuerwehr löscht einen Brand in einem Wohnhaus in Berlin
Bundeskanzler spricht auf einer Pressekonferenz im Kanzleramt
Kinder spielen im Schnee im Stadtpark
Das neue Stadion wird in der Innenstadt gebaut
Herren Wanderschuhe wasserdicht aus braunem Leder
Gemütliches Wohnzimmer mit Kamin und Holzboden
Frisch gebackenes Brot auf dem Küchentisch
Blick auf die Alpen im Winter
Spieler feiern nach dem Tor im Stadion
Unser Team beim jährlichen Sommerfest
Jetzt kostenlos registrieren und Angebote erhalten
Wohnung zu vermieten mit Balkon und Garten
Rezept für Apfelstrudel mit Vanillesoße
Polizei sucht Zeugen nach Unfall auf der Autobahn
Les pompiers éteignent un incendie dans un immeuble à Paris
Le président parle lors d'une conférence de presse à l'Élysée
Des enfants jouent dans la neige au parc
Chaussures de randonnée imperméables pour homme en cuir marron
Salon lumineux avec cheminée et parquet
Vue aérienne de la ville la nuit
Les joueurs célèbrent après le but
Recette de la tarte aux pommes maison
Appartement à louer avec terrasse et jardin
Notre équipe lors du pique-nique annuel
Inscrivez-vous à notre lettre d'information
Les touristes visitent la tour Eiffel
Los bomberos apagan un incendio en un edificio de Madrid
El presidente habla durante una rueda de prensa
Niños jugando en la nieve en el parque
Zapatos de senderismo impermeables para hombre
Salón con chimenea y suelo de madera
Vista aérea de la ciudad de noche
Los jugadores celebran el gol en el estadio
Receta de tortilla de patatas casera
Piso en venta con terraza y piscina
Nuestro equipo en la fiesta anual de la empresa
Suscríbete a nuestro boletín semanal
Playa de arena blanca al atardecer
De brandweer blust een brand in een woning in Amsterdam
De minister spreekt tijdens een persconferentie
Kinderen spelen in de sneeuw in het park
Waterdichte wandelschoenen voor heren van bruin leer
Woonkamer met open haard en houten vloer
Luchtfoto van de stad bij nacht
De spelers vieren het doelpunt in het stadion
Recept voor appeltaart met slagroom
Huis te koop met tuin en garage
Ons team tijdens het jaarlijkse bedrijfsuitje
Meld je aan voor onze nieuwsbrief
Fietsers op een dijk langs de rivier
I vigili del fuoco spengono un incendio a Roma
Il presidente parla durante una conferenza stampa
Bambini che giocano sulla neve nel parco
Scarpe da trekking impermeabili da uomo
Soggiorno con camino e pavimento in legno
Ricetta della pasta alla carbonara
Appartamento in vendita con terrazzo
I giocatori festeggiano dopo il gol
Os bombeiros apagam um incêndio num prédio em Lisboa
O presidente fala durante uma conferência de imprensa
Crianças brincam na neve no parque
Sapatos de caminhada impermeáveis para homem
Sala de estar com lareira e piso de madeira
Receita de bolo de chocolate caseiro
Apartamento à venda com varanda
Os jogadores comemoram o golo no estádio
Brandmän släcker en brand i ett hus i Stockholm
Barn leker i snön i parken
Vardagsrum med öppen spis och trägolv
Brandmænd slukker en brand i en lejlighed i København
Børn leger i sneen i parken
Strażacy gaszą pożar budynku w Warszawie
Dzieci bawią się na śniegu w parku
Hasiči hasí požár domu v Praze
Děti si hrají na sněhu v parku
Petugas pemadam kebakaran memadamkan api di sebuah rumah di Jakarta
Anak-anak bermain di taman pada sore hari
İtfaiye ekipleri İstanbul'da bir binadaki yangını söndürdü
Çocuklar parkta karda oynuyor
""".strip().splitlines()
